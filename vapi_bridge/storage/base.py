"""What every storage backend offers: a few key-value primitives, nothing domain-specific.

Backends never know what a "note" or a "summary" is (that is ``state.py``); they
only move strings with a TTL. Driver errors leave a backend as ``StorageError``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import ClassVar


class StorageError(RuntimeError):
    """The store could not be reached or refused a command."""


class Backend(ABC):
    name: ClassVar[str]  # "memory" | "redis" | "kv-rest": what STATE_STORAGE says
    label: ClassVar[str]  # what /health calls it, as the seed did
    persistent: ClassVar[bool]

    @property
    def startup_message(self) -> str:
        return f"[STATE_STORAGE] Using {self.label} storage"

    @abstractmethod
    def get(self, key: str) -> str | None: ...

    @abstractmethod
    def set(self, key: str, value: str, *, ex: int, nx: bool = False) -> bool:
        """Write ``value`` with a TTL of ``ex`` seconds; with ``nx``, only if absent.

        Returns whether the value was written.
        """

    @abstractmethod
    def set_or_get(self, key: str, value: str, *, ex: int) -> str | None:
        """Write ``value`` with a TTL of ``ex`` seconds unless ``key`` exists, in one atomic
        step (Redis: SET NX GET). Returns the value ``key`` already held, None if written."""

    @abstractmethod
    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        """Read several keys in one round trip (MGET)."""

    @abstractmethod
    def set_many(self, items: Mapping[str, str], *, ex: int,
                 append: tuple[str, str, int] | None = None,
                 incr: Mapping[str, int] | None = None,
                 owner: tuple[str, str] | None = None) -> str | None:
        """Write several keys in one round trip (not atomic, unless ``owner`` is given).

        ``append`` = (log key, value, keep) appends ``value`` to a capped log in the same
        round trip, which then keeps only its last ``keep`` values (Redis: XADD MAXLEN) and
        expires ``ex`` seconds after this append. ``incr`` adds to counters, each then
        expiring ``ex`` seconds from now (INCRBY, EXPIRE).

        ``owner`` = (key, value): first ``set_or_get(key, value, ex=ex)``, in the same atomic
        step; if ``key`` holds another value, nothing is written and that value is returned.
        None otherwise.
        """

    @abstractmethod
    def latest(self, key: str, count: int) -> list[str]:
        """The last ``count`` values appended to a capped log, newest first."""

    @abstractmethod
    def delete(self, key: str) -> bool: ...

    @abstractmethod
    def delete_if_equals(self, key: str, value: str) -> bool:
        """Delete ``key`` only if it still holds ``value`` (one atomic step)."""

    @abstractmethod
    def incr(self, key: str, *, ex: int) -> tuple[int, int]:
        """Add 1 to the counter at ``key`` (0 if absent) in one atomic step; a counter
        without a TTL gets ``ex`` seconds, one that has one keeps it (a fixed window).

        Returns (the new count, seconds left).
        """

    # Sorted sets (the outbox, the call status). Scores are floats.
    @abstractmethod
    def zadd(self, key: str, member: str, score: float, *, gt: bool = False,
             ex: int | None = None) -> bool:
        """Add or re-score ``member``; with ``gt`` only to a higher score; ``ex`` sets the
        key's TTL in the same round trip. Returns whether the member was added or changed."""

    @abstractmethod
    def zscore(self, key: str, member: str) -> float | None: ...

    @abstractmethod
    def zrange_by_score(self, key: str, *, max_score: float | None = None,
                        limit: int | None = None,
                        desc: bool = False) -> list[tuple[str, float]]:
        """(member, score) pairs up to ``max_score``, lowest first (highest with ``desc``)."""

    @abstractmethod
    def zrem(self, key: str, member: str) -> bool: ...

    @abstractmethod
    def zcard(self, key: str) -> int: ...

    @abstractmethod
    def zcard_many(self, keys: Sequence[str]) -> list[int]:
        """The sizes of several sorted sets in one round trip."""

    @abstractmethod
    def ttl(self, key: str) -> int:
        """Seconds left, -1 for a key without expiry, -2 for a missing key (Redis's TTL)."""

    @abstractmethod
    def ping(self) -> None:
        """Raise ``StorageError`` unless the store answers."""


# SET NX GET for servers that cannot combine NX and GET (before Redis 7.0; Upstash documents
# 6.2): the holder's value, or false after writing ours.
SET_OR_GET_LUA = """
local held = redis.call("get", KEYS[1])
if held then
  return held
end
redis.call("set", KEYS[1], ARGV[1], "EX", ARGV[2])
return false
"""

# Compare-and-delete, from the Redis SET documentation's locking pattern.
DELETE_IF_EQUALS_LUA = """
if redis.call("get", KEYS[1]) == ARGV[1] then
  return redis.call("del", KEYS[1])
end
return 0
"""

# A counter with a fixed window: INCR, and EXPIRE only when the key has no TTL yet (what
# EXPIRE NX does on Redis 7+, here on any version); one command, so one round trip.
INCR_LUA = """
local count = redis.call("incr", KEYS[1])
local ttl = redis.call("ttl", KEYS[1])
if ttl < 0 then
  redis.call("expire", KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


def owned_writes(owner: tuple[str, str], items: Mapping[str, str], ex: int,
                 append: tuple[str, str, int] | None,
                 incr: Mapping[str, int] | None) -> tuple[list[str], list[str | int]]:
    """KEYS and ARGV of ``OWNED_SET_MANY_LUA`` for ``set_many(..., owner=owner)``."""
    keys = [owner[0], *items]
    args: list[str | int] = [owner[1], ex, len(items), append[2] if append else 0, *items.values()]
    if append:
        keys.append(append[0])
        args.append(append[1])
    for key, amount in (incr or {}).items():
        keys.append(key)
        args.append(amount)
    return keys, args


# set_many with an owner, in one atomic step: the owner key's SET NX GET (as SET_OR_GET_LUA,
# for servers before Redis 7.0), then, only if the owner is ours, what set_many's pipeline
# writes, the same commands in the same order. Returns the other owner, or false.
# KEYS: owner, the items', the log's (if any), the counters'. ARGV: owner, ex, number of
# items, the log's cap (0: no log), the items' values, the log's value, the counters' amounts.
OWNED_SET_MANY_LUA = """
local held = redis.call("get", KEYS[1])
if held and held ~= ARGV[1] then
  return held
end
local ex = ARGV[2]
if not held then
  redis.call("set", KEYS[1], ARGV[1], "EX", ex)
end
local k, a = 2, 5
for _ = 1, tonumber(ARGV[3]) do
  redis.call("set", KEYS[k], ARGV[a], "EX", ex)
  k, a = k + 1, a + 1
end
if tonumber(ARGV[4]) > 0 then
  redis.call("xadd", KEYS[k], "MAXLEN", ARGV[4], "*", "v", ARGV[a])
  redis.call("expire", KEYS[k], ex)
  k, a = k + 1, a + 1
end
while k <= #KEYS do
  redis.call("incrby", KEYS[k], ARGV[a])
  redis.call("expire", KEYS[k], ex)
  k, a = k + 1, a + 1
end
return false
"""
