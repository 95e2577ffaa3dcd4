"""Who may POST to the Server URL: a shared token, an HMAC signature, or both.

Checked on the raw bytes before anything is parsed; every comparison is
constant-time, and no secret, signature or token reaches a log line.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from collections.abc import Mapping

from ..config import Settings


def verify(settings: Settings, body: bytes, headers: Mapping[str, str],
           query: Mapping[str, str], now: float | None = None) -> str | None:
    """Return ``None`` when the request may pass, else which check failed (safe to log)."""
    if not settings.auth_modes:
        return None
    failures = []
    if settings.webhook_token:
        failure = _check_token(settings.webhook_token, headers, query)
        if failure is None:
            return None
        failures.append(failure)
    if settings.hmac_secret:
        failure = _check_hmac(settings, body, headers, time.time() if now is None else now)
        if failure is None:
            return None
        failures.append(failure)
    return "; ".join(failures)


def _check_token(token: str, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    authorization = headers.get("Authorization", "")
    offered = [
        headers.get("X-Vapi-Secret"),
        authorization[7:] if authorization[:7].lower() == "bearer " else None,
        query.get("token"),
    ]
    offered = [value for value in offered if value]
    if not offered:
        return "token: none offered (in X-Vapi-Secret, an Authorization header or ?token)"
    expected = token.encode()
    # Compare every candidate: how many were tried must not depend on where a match is.
    matches = [hmac.compare_digest(value.strip().encode(), expected) for value in offered]
    return None if any(matches) else "token: wrong token"


def _check_hmac(settings: Settings, body: bytes, headers: Mapping[str, str],
                now: float) -> str | None:
    signature = headers.get(settings.hmac_header, "").strip()
    if not signature:
        return f"hmac: no {settings.hmac_header} header"
    signed = body
    timestamp_header = settings.hmac_timestamp_header
    if timestamp_header:
        timestamp = headers.get(timestamp_header, "").strip()
        seconds = _seconds(timestamp)
        if seconds is None:
            return f"hmac: missing or malformed {timestamp_header} header"
        if abs(now - seconds) > settings.hmac_tolerance:
            return f"hmac: timestamp outside the {settings.hmac_tolerance}s window"
        signed = timestamp.encode() + b"." + body
    expected = hmac.new(settings.hmac_secret.encode(), signed, settings.hmac_algorithm).digest()
    offered = _decode_signature(signature, settings.hmac_algorithm, len(expected))
    if offered is None or not hmac.compare_digest(offered, expected):
        return "hmac: signature mismatch"
    return None


def _seconds(timestamp: str) -> float | None:
    try:
        value = float(timestamp)
    except ValueError:
        return None
    return value / 1000 if value > 1e12 else value  # epoch milliseconds or seconds


def _decode_signature(signature: str, algorithm: str, size: int) -> bytes | None:
    """Hex or base64, with or without an ``sha256=`` style prefix."""
    prefix = f"{algorithm}="
    if signature.lower().startswith(prefix):
        signature = signature[len(prefix):]
    if len(signature) == 2 * size:
        try:
            return bytes.fromhex(signature)
        except ValueError:
            pass
    try:
        decoded = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if len(decoded) == size else None
