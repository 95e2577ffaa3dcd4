"""In-process dict backend: the laptop default.

Per process and lost on restart, so it cannot dedupe across gunicorn workers or
Vercel instances. Thread-safe, expires by TTL, and bounded: past ``max_entries``
the least recently written keys are evicted.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from ..config import Settings
from .base import Backend, ranked


class MemoryBackend(Backend):
    name = "memory"
    label = "memory"
    persistent = False

    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (value, expires_at); ordered by last write, oldest first.
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings) -> MemoryBackend:
        return cls(max_entries=settings.storage_max_entries)

    @property
    def startup_message(self) -> str:
        return "[STATE_STORAGE] Using in-memory storage (not persistent in Vercel!)"

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> str | None:
        with self._lock:
            entry = self._live(key)
            return entry[0] if entry else None

    def set(self, key: str, value: str, *, ex: int, nx: bool = False) -> bool:
        with self._lock:
            if nx and self._live(key):
                return False
            self._write(key, value, ex)
            return True

    def set_many(self, items: Mapping[str, str], *, ex: int) -> None:
        with self._lock:
            for key, value in items.items():
                self._write(key, value, ex)

    def delete_if_equals(self, key: str, value: str) -> bool:
        with self._lock:
            entry = self._live(key)
            if entry and entry[0] == value:
                del self._entries[key]
                return True
            return False

    def set_if_higher(self, key: str, rank: int, value: str, *, ex: int) -> bool:
        with self._lock:
            entry = self._live(key)
            current = ranked(entry[0]) if entry else None
            if current and current[0] >= rank:
                return False
            self._write(key, f"{rank}:{value}", ex)
            return True

    def ttl(self, key: str) -> int:
        with self._lock:
            entry = self._live(key)
            return max(1, round(entry[1] - self._clock())) if entry else -2

    def ping(self) -> None:
        return None

    # Callers hold the lock.
    def _live(self, key: str) -> tuple[str, float] | None:
        entry = self._entries.get(key)
        if entry and entry[1] <= self._clock():
            del self._entries[key]
            return None
        return entry

    def _write(self, key: str, value: str, ex: int) -> None:
        now = self._clock()
        self._entries[key] = (value, now + ex)
        self._entries.move_to_end(key)
        # With one TTL for every key, write order is expiry order: drop the
        # expired head cheaply, then evict the oldest past the bound.
        while self._entries:
            oldest_key, (_, expires_at) = next(iter(self._entries.items()))
            if expires_at > now and len(self._entries) <= self._max_entries:
                break
            del self._entries[oldest_key]
