"""Who may POST to the Server URL: a token, an HMAC signature, or both; global or a client's.

The headers are checked first: the body is read only when an HMAC signature could still
pass, so a request that cannot pass is refused before its body arrives. Every secret is
compared in constant time against every candidate (no early exit), and no secret,
signature or token reaches a log line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..clients import Client
from ..config import Settings

# (whose secret: None for the global one, the secret)
Candidate = tuple[Client | None, str]


@dataclass(frozen=True)
class Passed:
    client: Client | None = None  # whose own secret passed; None for a global one (or none)
    signature: bytes | None = None  # the HMAC that passed: a replay of it is refused


class Refused(Exception):
    """Which check failed; the message is safe to log."""


def configured(settings: Settings) -> bool:
    """Whether any webhook secret is set (global or a client's)."""
    return bool(settings.auth_modes)


def verify(settings: Settings, headers: Mapping[str, str], query: Mapping[str, str],
           read_body: Callable[[], bytes], now: float | None = None) -> Passed:
    """Let the request pass (saying whose secret it had) or raise ``Refused``.

    ``read_body`` is called only once the headers leave an HMAC signature able to pass.
    """
    tokens = _candidates(settings.webhook_token, settings, "webhook_token")
    secrets = _candidates(settings.hmac_secret, settings, "hmac_secret")
    if not tokens and not secrets:
        return Passed()
    failures = []
    if tokens:
        owner, failure = _check_token(tokens, headers, query)
        if failure is None:
            return Passed(owner)
        failures.append(failure)
    if secrets:
        now = time.time() if now is None else now
        signed = _check_hmac_headers(settings, headers, now)
        if isinstance(signed, str):
            failures.append(signed)
        else:
            passed = _check_signature(settings, secrets, signed, read_body())
            if passed is not None:
                return passed
            failures.append("hmac: signature mismatch")
    raise Refused("; ".join(failures))


def _candidates(global_secret: str | None, settings: Settings, name: str) -> list[Candidate]:
    own = [(client, getattr(client, name)) for client in settings.clients
           if getattr(client, name)]
    return ([(None, global_secret)] if global_secret else []) + own


def _same(offered: bytes, expected: bytes) -> bool:
    # Digests first: equal lengths, so not even a secret's length shows in the timing.
    return hmac.compare_digest(hashlib.sha256(offered).digest(),
                               hashlib.sha256(expected).digest())


def _check_token(tokens: list[Candidate], headers: Mapping[str, str],
                 query: Mapping[str, str]) -> tuple[Client | None, str | None]:
    authorization = headers.get("Authorization", "")
    offered = [
        headers.get("X-Vapi-Secret"),
        authorization[7:] if authorization[:7].lower() == "bearer " else None,
        query.get("token"),
    ]
    offered = [value.strip().encode() for value in offered if value and value.strip()]
    if not offered:
        return None, "token: none offered (in X-Vapi-Secret, an Authorization header or ?token)"
    # Every offered value against every token: the work never depends on where a match is.
    matches = [owner for value in offered for owner, token in tokens
               if _same(value, token.encode())]
    return (matches[0], None) if matches else (None, "token: wrong token")


@dataclass(frozen=True)
class _Signed:
    signature: bytes
    prefix: bytes  # what is signed before the body: b"<timestamp>." or nothing


def _check_hmac_headers(settings: Settings, headers: Mapping[str, str],
                        now: float) -> _Signed | str:
    """What the headers alone say about a signature: a reason to refuse, or what to check."""
    header = settings.hmac_header
    signature = headers.get(header, "").strip()
    if not signature:
        return f"hmac: no {header} header"
    prefix = b""
    timestamp_header = settings.hmac_timestamp_header
    if timestamp_header:
        timestamp = headers.get(timestamp_header, "").strip()
        seconds = _seconds(timestamp)
        if seconds is None:
            return f"hmac: missing or malformed {timestamp_header} header"
        if abs(now - seconds) > settings.hmac_tolerance:
            return f"hmac: timestamp outside the {settings.hmac_tolerance}s window"
        prefix = timestamp.encode() + b"."
    size = hashlib.new(settings.hmac_algorithm).digest_size
    decoded = _decode_signature(signature, settings.hmac_algorithm, size)
    if decoded is None:
        return "hmac: signature mismatch"
    return _Signed(decoded, prefix)


def _check_signature(settings: Settings, secrets: list[Candidate], signed: _Signed,
                     body: bytes) -> Passed | None:
    # A digest for every candidate secret, whichever one matches.
    matches = [owner for owner, secret in secrets
               if hmac.compare_digest(signed.signature, hmac.new(
                   secret.encode(), signed.prefix + body, settings.hmac_algorithm).digest())]
    return Passed(matches[0], signed.signature) if matches else None


def _seconds(timestamp: str) -> float | None:
    try:
        value = float(timestamp)
    except ValueError:
        return None
    if not math.isfinite(value):  # nan passes any window comparison; inf is no time
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
