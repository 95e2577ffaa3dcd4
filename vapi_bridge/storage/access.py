"""Who may come in: sign-in attempts, sessions and signed webhooks already let in.

Any string a caller chose (an address, a session id, a signature) is hashed before it becomes
part of a key: the store never holds a value that would pass.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable

from .base import Backend


def digest(value: str) -> str:
    """A fixed-size, key-safe stand-in for a value that must not appear in a key as is."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


class AccessState:
    """Mixed into ``StateStore``: uses its ``backend`` and ``key``."""

    backend: Backend
    key: Callable[..., str]

    # Attempts: how often someone tried something within a window (the sign-in limit).
    # One counter per ``who`` (an address...), hashed: any string is safe in the key.
    def count_attempt(self, kind: str, who: str, window: int) -> tuple[int, int]:
        """One more attempt by ``who``: (attempts in the window, seconds until it frees).

        The window starts at the first attempt and is not extended by later ones.
        """
        return self.backend.incr(self.key(kind, digest(who)), ex=window)

    def clear_attempts(self, kind: str, who: str) -> None:
        self.backend.delete(self.key(kind, digest(who)))

    # Sessions (the status page's sign-in): a random id in the cookie, its digest stored
    # with the session's lifetime as TTL; deleting it signs that browser out everywhere.
    def open_session(self, kind: str, ttl: int) -> str:
        session_id = secrets.token_urlsafe(32)
        self.backend.set(self.key(kind, digest(session_id)), "1", ex=ttl)
        return session_id

    def has_session(self, kind: str, session_id: str) -> bool:
        return self.backend.get(self.key(kind, digest(session_id))) is not None

    def close_session(self, kind: str, session_id: str) -> bool:
        return self.backend.delete(self.key(kind, digest(session_id)))

    # Signed webhooks already let in: the same signature again within the window is a replay.
    def first_use_of_signature(self, signature: bytes, window: int) -> bool:
        """Record ``signature`` for ``window`` seconds; False if it was already recorded."""
        # Keyed by a hash: the store never holds a signature that would pass.
        key = self.key("signature", hashlib.sha256(signature).hexdigest())
        token = secrets.token_hex(8)
        # One SET NX; a driver's retry after a lost reply finds our own token.
        return (self.backend.set(key, token, ex=window, nx=True)
                or self.backend.get(key) == token)
