"""In-process dict backend: the laptop default.

Per process and lost on restart, so it cannot dedupe across gunicorn workers or
Vercel instances. Thread-safe, expires by TTL, and bounded: past ``max_entries``
the least recently written keys are evicted. A sorted set is one entry holding a
``{member: score}`` dict, a capped log one holding a ``deque``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence

from ..config import Settings
from .base import Backend, StorageError

Value = str | dict[str, float] | deque[str]  # a string, a sorted set, a capped log


class MemoryBackend(Backend):
    name = "memory"
    label = "memory"
    persistent = False

    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (value, expires_at); ordered by last write, oldest first.
        self._entries: OrderedDict[str, tuple[Value, float]] = OrderedDict()

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
            return self._string(key)

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        with self._lock:
            return [self._string(key) for key in keys]

    def set(self, key: str, value: str, *, ex: int, nx: bool = False) -> bool:
        with self._lock:
            if nx and self._live(key):
                return False
            self._write(key, value, ex)
            return True

    def set_or_get(self, key: str, value: str, *, ex: int) -> str | None:
        with self._lock:
            if self._live(key):
                return self._string(key)
            self._write(key, value, ex)
            return None

    def set_many(self, items: Mapping[str, str], *, ex: int,
                 append: tuple[str, str, int] | None = None,
                 incr: Mapping[str, int] | None = None,
                 owner: tuple[str, str] | None = None) -> str | None:
        with self._lock:
            if owner:  # as set_or_get, under the same lock as the writes
                held = self._string(owner[0])
                if held is not None and held != owner[1]:
                    return held
                if held is None:
                    self._write(owner[0], owner[1], ex)
            for key, value in items.items():
                self._write(key, value, ex)
            if append:
                key, value, keep = append
                entry = self._live(key)
                log = entry[0] if entry and isinstance(entry[0], deque) else deque(maxlen=keep)
                log.append(value)
                self._write(key, log, ex)
            for key, amount in (incr or {}).items():
                count = self._string(key)
                self._write(key, str(int(count or 0) + amount), ex)
            return None

    def latest(self, key: str, count: int) -> list[str]:
        with self._lock:
            entry = self._live(key)
            log = entry[0] if entry and isinstance(entry[0], deque) else deque()
            return list(reversed(log))[:count]

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._entries.pop(key, None) is not None

    def delete_if_equals(self, key: str, value: str) -> bool:
        with self._lock:
            entry = self._live(key)
            if entry and entry[0] == value:
                del self._entries[key]
                return True
            return False

    def incr(self, key: str, *, ex: int) -> tuple[int, int]:
        with self._lock:
            entry = self._live(key)
            if entry and not (isinstance(entry[0], str) and entry[0].lstrip("-").isdigit()):
                raise StorageError("memory: value is not an integer")  # as Redis refuses it
            count = int(entry[0]) + 1 if entry else 1
            now = self._clock()
            expires_at = entry[1] if entry and not math.isinf(entry[1]) else now + ex
            self._write(key, str(count), None, expires_at)
            return count, max(1, round(expires_at - now))

    def zadd(self, key: str, member: str, score: float, *, gt: bool = False,
             ex: int | None = None) -> bool:
        with self._lock:
            members, expires_at = self._zset(key)
            current = members.get(member)
            changed = current is None or (score > current if gt else score != current)
            if changed:
                members[member] = score
            self._write(key, members, ex, expires_at)
            return changed

    def zscore(self, key: str, member: str) -> float | None:
        with self._lock:
            return self._zset(key)[0].get(member)

    def zrange_by_score(self, key: str, *, max_score: float | None = None,
                        limit: int | None = None,
                        desc: bool = False) -> list[tuple[str, float]]:
        with self._lock:
            members = self._zset(key)[0]
            pairs = sorted(((m, s) for m, s in members.items()
                            if max_score is None or s <= max_score),
                           key=lambda pair: (pair[1], pair[0]), reverse=desc)
            return pairs[:limit] if limit is not None else pairs

    def zrem(self, key: str, member: str) -> bool:
        with self._lock:
            return self._zset(key)[0].pop(member, None) is not None

    def zcard(self, key: str) -> int:
        with self._lock:
            return len(self._zset(key)[0])

    def zcard_many(self, keys: Sequence[str]) -> list[int]:
        with self._lock:
            return [len(self._zset(key)[0]) for key in keys]

    def ttl(self, key: str) -> int:
        with self._lock:
            entry = self._live(key)
            if not entry:
                return -2
            return -1 if math.isinf(entry[1]) else max(1, round(entry[1] - self._clock()))

    def ping(self) -> None:
        return None

    def take_all(self) -> list[tuple[str, Value, int | None]]:
        """Empty the store: every live (key, value, seconds left or None for no expiry)."""
        with self._lock:
            now = self._clock()
            entries = [(key, value, None if math.isinf(at) else max(1, round(at - now)))
                       for key, (value, at) in self._entries.items() if at > now]
            self._entries.clear()
            return entries

    # Callers hold the lock.
    def _string(self, key: str) -> str | None:
        entry = self._live(key)
        return entry[0] if entry and isinstance(entry[0], str) else None

    def _zset(self, key: str) -> tuple[dict[str, float], float]:
        """The sorted set at ``key`` (changed in place) and its expiry; a new one if absent."""
        entry = self._live(key)
        if entry and isinstance(entry[0], dict):
            return entry[0], entry[1]
        return {}, math.inf

    def _live(self, key: str) -> tuple[Value, float] | None:
        entry = self._entries.get(key)
        if entry and entry[1] <= self._clock():
            del self._entries[key]
            return None
        return entry

    def _write(self, key: str, value: Value, ex: int | None,
               expires_at: float = math.inf) -> None:
        now = self._clock()
        self._entries[key] = (value, now + ex if ex is not None else expires_at)
        self._entries.move_to_end(key)
        # With one TTL for every key, write order is expiry order: drop the
        # expired head cheaply, then evict the oldest past the bound.
        while self._entries:
            oldest_key, (_, expires_at) = next(iter(self._entries.items()))
            if expires_at > now and len(self._entries) <= self._max_entries:
                break
            del self._entries[oldest_key]
