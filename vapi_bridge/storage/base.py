"""What every storage backend offers: a few key-value primitives, nothing domain-specific.

Backends never know what a "note" or a "summary" is (that is ``state.py``); they
only move strings with a TTL. Driver errors leave a backend as ``StorageError``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
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
    def set_many(self, items: Mapping[str, str], *, ex: int) -> None:
        """Write several keys in one round trip (not atomic)."""

    @abstractmethod
    def delete_if_equals(self, key: str, value: str) -> bool:
        """Delete ``key`` only if it still holds ``value`` (one atomic step)."""

    @abstractmethod
    def set_if_higher(self, key: str, rank: int, value: str, *, ex: int) -> bool:
        """Store ``"<rank>:<value>"`` unless the key holds an equal or higher rank (atomic)."""

    @abstractmethod
    def ttl(self, key: str) -> int:
        """Seconds left, -1 for a key without expiry, -2 for a missing key (Redis's TTL)."""

    @abstractmethod
    def ping(self) -> None:
        """Raise ``StorageError`` unless the store answers."""


# Compare-and-delete, from the Redis SET documentation's locking pattern.
DELETE_IF_EQUALS_LUA = """
if redis.call("get", KEYS[1]) == ARGV[1] then
  return redis.call("del", KEYS[1])
end
return 0
"""

# Monotonic write: values are "<rank>:<text>"; only a higher rank replaces one.
SET_IF_HIGHER_LUA = """
local current = redis.call("get", KEYS[1])
if current then
  local rank = tonumber(string.match(current, "^(%d+):"))
  if rank and rank >= tonumber(ARGV[1]) then return 0 end
end
redis.call("set", KEYS[1], ARGV[1] .. ":" .. ARGV[2], "EX", ARGV[3])
return 1
"""


def ranked(value: str | None) -> tuple[int, str] | None:
    """Split a ``set_if_higher`` value into (rank, text)."""
    if value is None:
        return None
    rank, _, text = value.partition(":")
    return (int(rank), text) if rank.isdigit() else None
