"""Redis over TCP (redis-py): a VPS Redis, or Vercel KV / Upstash through ``KV_URL``."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from ..config import Settings
from .base import (
    DELETE_IF_EQUALS_LUA,
    INCR_LUA,
    OWNED_SET_MANY_LUA,
    SET_OR_GET_LUA,
    Backend,
    StorageError,
    owned_writes,
)

log = logging.getLogger(__name__)

# Hosts that only speak TLS even when their URL says redis:// (legacy Vercel KV did).
TLS_ONLY_HOSTS = (".upstash.io", ".kv.vercel-storage.com")


def require_tls(url: str) -> tuple[str, bool]:
    """Rewrite ``redis://`` to ``rediss://`` for TLS-only hosts; say whether it did."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "redis" and host.endswith(TLS_ONLY_HOSTS):
        return urlunsplit(parts._replace(scheme="rediss")), True
    return url, False


class RedisBackend(Backend):
    name = "redis"
    label = "Redis"
    persistent = True

    def __init__(self, url: str, *, timeout: float = 2.0, connect_timeout: float = 1.0):
        self._client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=connect_timeout,
            # Managed Redis closes idle connections; ping before reusing an old one.
            health_check_interval=30,
            # One quick retry for a dropped connection, not redis-py's multi-second default.
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=1),
        )
        self._delete_if_equals = self._client.register_script(DELETE_IF_EQUALS_LUA)
        self._incr = self._client.register_script(INCR_LUA)
        self._set_or_get = self._client.register_script(SET_OR_GET_LUA)
        self._owned_set_many = self._client.register_script(OWNED_SET_MANY_LUA)
        self._set_nx_get = True  # until the server refuses it (before Redis 7.0)

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisBackend:
        url, rewritten = require_tls(settings.redis_url or "")
        if rewritten:
            log.info("[STATE_STORAGE] %s points at a TLS-only host: connecting with rediss://",
                     settings.redis_url_var)
        return cls(url, timeout=settings.storage_timeout,
                   connect_timeout=settings.storage_connect_timeout)

    @property
    def client(self) -> redis.Redis:
        return self._client

    def get(self, key: str) -> str | None:
        with _wrapped():
            return self._client.get(key)

    def set(self, key: str, value: str, *, ex: int, nx: bool = False) -> bool:
        with _wrapped():
            return bool(self._client.set(key, value, ex=ex, nx=nx))

    def set_or_get(self, key: str, value: str, *, ex: int) -> str | None:
        with _wrapped():
            if self._set_nx_get:
                try:
                    return self._client.set(key, value, ex=ex, nx=True, get=True)
                except redis.ResponseError:  # "syntax error": NX and GET not together here
                    log.info("[STATE_STORAGE] SET NX GET refused: using a Lua script instead")
                    self._set_nx_get = False
            return self._set_or_get(keys=[key], args=[value, ex])

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        with _wrapped():
            return self._client.mget(keys)

    def set_many(self, items: Mapping[str, str], *, ex: int,
                 append: tuple[str, str, int] | None = None,
                 incr: Mapping[str, int] | None = None,
                 owner: tuple[str, str] | None = None) -> str | None:
        if owner:  # one script (EVALSHA): the owner decides whether anything is written
            keys, args = owned_writes(owner, items, ex, append, incr)
            with _wrapped():
                return self._owned_set_many(keys=keys, args=args)
        with _wrapped():
            pipe = self._client.pipeline(transaction=False)
            for key, value in items.items():
                pipe.set(key, value, ex=ex)
            if append:
                key, value, keep = append
                pipe.xadd(key, {"v": value}, maxlen=keep, approximate=False)
                pipe.expire(key, ex)
            for key, amount in (incr or {}).items():
                pipe.incrby(key, amount)
                pipe.expire(key, ex)
            pipe.execute()
        return None

    def latest(self, key: str, count: int) -> list[str]:
        with _wrapped():
            return [fields["v"] for _, fields in self._client.xrevrange(key, count=count)]

    def delete(self, key: str) -> bool:
        with _wrapped():
            return bool(self._client.delete(key))

    def delete_if_equals(self, key: str, value: str) -> bool:
        with _wrapped():
            return bool(self._delete_if_equals(keys=[key], args=[value]))

    def incr(self, key: str, *, ex: int) -> tuple[int, int]:
        with _wrapped():
            count, ttl = self._incr(keys=[key], args=[ex])
            return int(count), int(ttl)

    def zadd(self, key: str, member: str, score: float, *, gt: bool = False,
             ex: int | None = None) -> bool:
        with _wrapped():
            if ex is None:
                return bool(self._client.zadd(key, {member: score}, gt=gt, ch=True))
            pipe = self._client.pipeline(transaction=False)
            pipe.zadd(key, {member: score}, gt=gt, ch=True)
            pipe.expire(key, ex)
            return bool(pipe.execute()[0])

    def zscore(self, key: str, member: str) -> float | None:
        with _wrapped():
            return self._client.zscore(key, member)

    def zrange_by_score(self, key: str, *, max_score: float | None = None,
                        limit: int | None = None,
                        desc: bool = False) -> list[tuple[str, float]]:
        top = "+inf" if max_score is None else repr(max_score)
        paging = {"start": 0, "num": limit} if limit is not None else {}
        with _wrapped():
            if desc:
                return self._client.zrevrangebyscore(key, top, "-inf", withscores=True, **paging)
            return self._client.zrangebyscore(key, "-inf", top, withscores=True, **paging)

    def zrem(self, key: str, member: str) -> bool:
        with _wrapped():
            return bool(self._client.zrem(key, member))

    def zcard(self, key: str) -> int:
        with _wrapped():
            return int(self._client.zcard(key))

    def zcard_many(self, keys: Sequence[str]) -> list[int]:
        with _wrapped():
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.zcard(key)
            return [int(size) for size in pipe.execute()]

    def ttl(self, key: str) -> int:
        with _wrapped():
            return int(self._client.ttl(key))

    def ping(self) -> None:
        with _wrapped():
            self._client.ping()


@contextmanager
def _wrapped() -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        raise StorageError(f"redis: {exc}") from exc
