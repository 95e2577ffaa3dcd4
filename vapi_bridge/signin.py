"""Checking ``ADMIN_TOKEN``, limited per client address (the status page, /health's details).

Every attempt from an address counts, in the state store so that the limit holds across
workers and instances: past ``MAX_FAILURES`` attempts within ``WINDOW_SECONDS`` (a fixed
window from the first), the token is not even compared until the window frees. A right
token clears its own address's counter, never another's. The address is
``request.remote_addr``: behind a reverse proxy, only werkzeug's ProxyFix (set up by the
operator) makes it the client's; X-Forwarded-For is never trusted here.
"""

from __future__ import annotations

import hmac
import logging
from contextlib import suppress
from dataclasses import dataclass

from flask import current_app, request

from .storage import StorageError, get_state

log = logging.getLogger(__name__)

MAX_FAILURES = 10
WINDOW_SECONDS = 300
ATTEMPTS = "signin-attempts"  # the counters' key kind: <prefix>:signin-attempts:<sha256>


@dataclass(frozen=True)
class Verdict:
    ok: bool
    retry_after: int | None = None  # seconds, when the address is refused for now


def same(given: str, expected: str) -> bool:
    """Constant-time comparison of two secrets."""
    return hmac.compare_digest(given.encode(), expected.encode())


def check_admin_token(given: str) -> Verdict:
    """Whether ``given`` is ADMIN_TOKEN, unless this address has tried too often."""
    token = current_app.config["SETTINGS"].admin_token or ""
    address = request.remote_addr or "unknown"
    state = get_state()
    try:
        attempts, seconds_left = state.count_attempt(ATTEMPTS, address, WINDOW_SECONDS)
    except StorageError as exc:
        # Fail open: a store that is down (with STATE_STORAGE_FALLBACK=none) must not lock
        # the operator out of the page that says so.
        log.warning("[ADMIN] Sign-in not rate-limited, store unavailable (%s)",
                    type(exc.__cause__ or exc).__name__)
        attempts, seconds_left = 0, 0
    if attempts > MAX_FAILURES:
        log.warning("[ADMIN] Sign-in refused from %s: over %d attempts in %d s (%d s left)",
                    address, MAX_FAILURES, WINDOW_SECONDS, seconds_left)
        return Verdict(ok=False, retry_after=max(1, seconds_left))
    if not token or not same(given, token):
        log.warning("[ADMIN] Failed sign-in from %s (%d of %d)", address, attempts, MAX_FAILURES)
        return Verdict(ok=False)
    with suppress(StorageError):  # else the count runs out with its window
        state.clear_attempts(ATTEMPTS, address)
    return Verdict(ok=True)
