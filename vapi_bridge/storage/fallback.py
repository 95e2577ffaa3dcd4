"""An in-process fallback for a persistent store that stops answering.

Modelled on Flask-Limiter's in-memory fallback. When the primary store (Redis, KV REST)
fails and a PING confirms it is down, that call and the ones after it are served by a
``MemoryBackend`` in this process ("degraded"), and the primary is probed again only
after a pause that doubles from 1 s to 30 s: a dead Redis costs one failure per pause,
not a timeout per request. Vapi sends a report once, so delivering it with in-process
claims (a duplicate is possible across processes) beats answering 503 and losing it.

What is written while degraded (call records, claims, parked deliveries) is handed back
to the primary when it answers again, without overwriting what the primary holds. A
command the primary refuses while it still answers PING (bad data, not an outage) raises
as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..config import Settings
from .base import Backend, StorageError
from .memory import MemoryBackend

log = logging.getLogger(__name__)

FIRST_PAUSE = 1.0
MAX_PAUSE = 30.0


def with_fallback(backend: Backend, settings: Settings) -> Backend:
    """``backend`` behind an in-process fallback, unless it is in-process already or
    ``STATE_STORAGE_FALLBACK=none``."""
    if not backend.persistent or settings.storage_fallback == "none":
        return backend
    return FallbackBackend(backend, MemoryBackend.from_settings(settings))


class FallbackBackend(Backend):
    def __init__(self, primary: Backend, fallback: Backend | None = None, *,
                 first_pause: float = FIRST_PAUSE, max_pause: float = MAX_PAUSE,
                 clock: Callable[[], float] = time.monotonic):
        self.primary = primary
        self.fallback = fallback if fallback is not None else MemoryBackend()  # (empty is falsy)
        self._first_pause, self._max_pause = first_pause, max_pause
        self._clock = clock
        self._lock = threading.Lock()
        self._pause = 0.0  # 0 while the primary answers, else the wait before the next probe
        self._next_probe = 0.0

    # The primary's identity: /health and the logs name the store that was configured.
    @property
    def name(self) -> str:  # type: ignore[override]
        return self.primary.name

    @property
    def label(self) -> str:  # type: ignore[override]
        return self.primary.label

    @property
    def persistent(self) -> bool:  # type: ignore[override]
        return self.primary.persistent

    @property
    def startup_message(self) -> str:
        return self.primary.startup_message

    @property
    def fallback_name(self) -> str:
        return self.fallback.name

    @property
    def degraded(self) -> bool:
        """Whether calls are being served from this process's memory."""
        return self._pause > 0

    def __getattr__(self, name: str) -> Any:
        # Anything else (the Redis client...) is the primary's.
        if name == "primary":
            raise AttributeError(name)
        return getattr(self.primary, name)

    def get(self, key: str) -> str | None:
        return self._use("get", key)

    def set(self, key: str, value: str, *, ex: int, nx: bool = False) -> bool:
        return self._use("set", key, value, ex=ex, nx=nx)

    def set_or_get(self, key: str, value: str, *, ex: int) -> str | None:
        return self._use("set_or_get", key, value, ex=ex)

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        return self._use("get_many", keys)

    def set_many(self, items: Mapping[str, str], *, ex: int,
                 append: tuple[str, str, int] | None = None,
                 incr: Mapping[str, int] | None = None,
                 owner: tuple[str, str] | None = None) -> str | None:
        return self._use("set_many", items, ex=ex, append=append, incr=incr, owner=owner)

    def latest(self, key: str, count: int) -> list[str]:
        return self._use("latest", key, count)

    def delete(self, key: str) -> bool:
        return self._use("delete", key)

    def delete_if_equals(self, key: str, value: str) -> bool:
        return self._use("delete_if_equals", key, value)

    def incr(self, key: str, *, ex: int) -> tuple[int, int]:
        return self._use("incr", key, ex=ex)

    def zadd(self, key: str, member: str, score: float, *, gt: bool = False,
             ex: int | None = None) -> bool:
        return self._use("zadd", key, member, score, gt=gt, ex=ex)

    def zscore(self, key: str, member: str) -> float | None:
        return self._use("zscore", key, member)

    def zrange_by_score(self, key: str, *, max_score: float | None = None,
                        limit: int | None = None,
                        desc: bool = False) -> list[tuple[str, float]]:
        return self._use("zrange_by_score", key, max_score=max_score, limit=limit, desc=desc)

    def zrem(self, key: str, member: str) -> bool:
        return self._use("zrem", key, member)

    def zcard(self, key: str) -> int:
        return self._use("zcard", key)

    def zcard_many(self, keys: Sequence[str]) -> list[int]:
        return self._use("zcard_many", keys)

    def ttl(self, key: str) -> int:
        return self._use("ttl", key)

    def ping(self) -> None:
        """PING the primary itself (what /health reports), whatever the pause."""
        try:
            self.primary.ping()
        except StorageError as exc:
            self._degrade(exc)
            raise
        self._recover()

    def _use(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        if self._primary_wanted():
            try:
                return getattr(self.primary, operation)(*args, **kwargs)
            except StorageError as exc:
                if not self._down(exc):
                    raise
        return getattr(self.fallback, operation)(*args, **kwargs)

    def _primary_wanted(self) -> bool:
        """Always while the primary answers; while it does not, one caller per pause probes."""
        if not self._pause:  # the common case, without the lock
            return True
        with self._lock:
            if not self._pause:
                return True
            if self._clock() < self._next_probe:
                return False
            # The others keep to the fallback while this caller probes.
            self._next_probe = self._clock() + self._pause
        try:
            self.primary.ping()
        except StorageError:
            with self._lock:
                self._pause = min(self._pause * 2, self._max_pause)
                self._next_probe = self._clock() + self._pause
            return False
        self._recover()
        return True

    def _down(self, exc: StorageError) -> bool:
        """After a failed call: is the store down (then degrade) or did it refuse the command?"""
        try:
            self.primary.ping()
        except StorageError:
            self._degrade(exc)
            return True
        return False

    def _degrade(self, exc: StorageError) -> None:
        with self._lock:
            if self._pause:
                return
            self._pause = self._first_pause
            self._next_probe = self._clock() + self._pause
        # The driver's error type only: its message may carry the store's address.
        log.warning("[STATE_STORAGE] %s not answering (%s): degraded, serving from in-process"
                    " memory until it answers again", self.primary.label,
                    type(exc.__cause__ or exc).__name__)

    def _recover(self) -> None:
        with self._lock:
            if not self._pause:
                return
            self._pause = 0.0
        log.warning("[STATE_STORAGE] %s answers again: recovered, back from in-process memory",
                    self.primary.label)
        self._hand_back()

    def _hand_back(self) -> None:
        """Copy what was written while degraded to the primary: a parked delivery must reach
        the drainers, a done mark must stop a repeat. Never over what the primary holds."""
        entries = self.fallback.take_all()
        try:
            for key, value, ttl in entries:
                if isinstance(value, dict):  # a sorted set: the outbox, a status...
                    for member, score in value.items():
                        self.primary.zadd(key, member, score, gt=True, ex=ttl)
                elif isinstance(value, deque):  # a capped log: the recent calls
                    for item in value:
                        self.primary.set_many({}, ex=ttl or 86400,
                                              append=(key, item, value.maxlen or 50))
                else:
                    self.primary.set(key, value, ex=ttl or 86400, nx=True)
        except StorageError as exc:
            log.error("[STATE_STORAGE] Hand-back to %s failed (%s): what was written during the"
                      " outage is lost", self.primary.label, type(exc.__cause__ or exc).__name__)
            return
        if entries:
            log.warning("[STATE_STORAGE] Handed %d entries written during the outage back to %s",
                        len(entries), self.primary.label)
