"""Vercel KV / Upstash over its REST API (``requests``).

Protocol: POST a JSON command array to the base URL, or a list of them to
``/pipeline``; answers are ``{"result": ...}`` or ``{"error": "..."}``; the token
travels as ``Authorization: Bearer``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

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


class RestBackend(Backend):
    name = "kv-rest"
    label = "Vercel KV"
    persistent = True

    def __init__(self, url: str, token: str, *, timeout: float = 2.0, connect_timeout: float = 1.0):
        self._url = url.rstrip("/")
        self._timeout = (connect_timeout, timeout)
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"
        # Retry only connections that never reached the server: a retried POST
        # could apply a command twice (or turn our own SET NX into a "taken").
        retry = Retry(total=None, connect=2, read=0, status=0, other=0, redirect=0,
                      backoff_factor=0.05)
        self._session.mount(self._url, HTTPAdapter(max_retries=retry))

    @classmethod
    def from_settings(cls, settings: Settings) -> RestBackend:
        return cls(settings.rest_url or "", settings.rest_token or "",
                   timeout=settings.storage_timeout,
                   connect_timeout=settings.storage_connect_timeout)

    def get(self, key: str) -> str | None:
        return self._command("GET", key)

    def set(self, key: str, value: str, *, ex: int, nx: bool = False) -> bool:
        args = ["SET", key, value, "EX", ex] + (["NX"] if nx else [])
        return self._command(*args) == "OK"

    def set_or_get(self, key: str, value: str, *, ex: int) -> str | None:
        # Upstash documents Redis 6.2, which refuses NX with GET: the script, one round trip.
        return self._command("EVAL", SET_OR_GET_LUA, 1, key, value, ex)

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        return list(self._command("MGET", *keys)) if keys else []

    def set_many(self, items: Mapping[str, str], *, ex: int,
                 append: tuple[str, str, int] | None = None,
                 incr: Mapping[str, int] | None = None,
                 owner: tuple[str, str] | None = None) -> str | None:
        if owner:  # the script, one request: the owner decides whether anything is written
            keys, args = owned_writes(owner, items, ex, append, incr)
            return self._command("EVAL", OWNED_SET_MANY_LUA, len(keys), *keys, *args)
        commands = [["SET", key, value, "EX", ex] for key, value in items.items()]
        if append:
            key, value, keep = append
            commands += [["XADD", key, "MAXLEN", keep, "*", "v", value], ["EXPIRE", key, ex]]
        for key, amount in (incr or {}).items():
            commands += [["INCRBY", key, amount], ["EXPIRE", key, ex]]
        self._pipeline(commands)
        return None

    def latest(self, key: str, count: int) -> list[str]:
        entries = self._command("XREVRANGE", key, "+", "-", "COUNT", count) or []
        # Each entry is [id, [field, value, ...]]: our one field is "v".
        return [dict(zip(fields[::2], fields[1::2], strict=True))["v"] for _, fields in entries]

    def delete(self, key: str) -> bool:
        return bool(self._command("DEL", key))

    def delete_if_equals(self, key: str, value: str) -> bool:
        return bool(self._command("EVAL", DELETE_IF_EQUALS_LUA, 1, key, value))

    def incr(self, key: str, *, ex: int) -> tuple[int, int]:
        count, ttl = self._command("EVAL", INCR_LUA, 1, key, ex)
        return int(count), int(ttl)

    def zadd(self, key: str, member: str, score: float, *, gt: bool = False,
             ex: int | None = None) -> bool:
        zadd = ["ZADD", key, *(["GT"] if gt else []), "CH", repr(score), member]
        if ex is None:
            return bool(self._command(*zadd))
        return bool(self._pipeline([zadd, ["EXPIRE", key, ex]])[0])

    def zscore(self, key: str, member: str) -> float | None:
        score = self._command("ZSCORE", key, member)
        return float(score) if score is not None else None

    def zrange_by_score(self, key: str, *, max_score: float | None = None,
                        limit: int | None = None,
                        desc: bool = False) -> list[tuple[str, float]]:
        top = "+inf" if max_score is None else repr(max_score)
        bounds = ["ZREVRANGEBYSCORE", key, top, "-inf"] if desc else [
            "ZRANGEBYSCORE", key, "-inf", top]
        paging = ["LIMIT", 0, limit] if limit is not None else []
        flat = self._command(*bounds, "WITHSCORES", *paging) or []
        return [(flat[i], float(flat[i + 1])) for i in range(0, len(flat), 2)]

    def zrem(self, key: str, member: str) -> bool:
        return bool(self._command("ZREM", key, member))

    def zcard(self, key: str) -> int:
        return int(self._command("ZCARD", key))

    def zcard_many(self, keys: Sequence[str]) -> list[int]:
        return [int(size) for size in self._pipeline([["ZCARD", key] for key in keys])]

    def ttl(self, key: str) -> int:
        return int(self._command("TTL", key))

    def ping(self) -> None:
        self._command("PING")

    def _command(self, *args: Any) -> Any:
        return _result(self._post(self._url, list(args)))

    def _pipeline(self, commands: list[list[Any]]) -> list[Any]:
        replies = self._post(f"{self._url}/pipeline", commands)
        if not isinstance(replies, list):
            return [_result(replies)]
        return [_result(reply) for reply in replies]

    def _post(self, url: str, body: Any) -> Any:
        try:
            response = self._session.post(url, json=body, timeout=self._timeout)
            reply = response.json()
        except requests.RequestException as exc:  # includes a body that is not JSON
            raise StorageError(f"kv-rest: {type(exc).__name__}: {exc}") from exc
        if not response.ok and not (isinstance(reply, dict) and "error" in reply):
            raise StorageError(f"kv-rest: HTTP {response.status_code}")
        return reply


def _result(reply: Any) -> Any:
    if not isinstance(reply, dict):
        raise StorageError(f"kv-rest: unexpected reply {type(reply).__name__}")
    if "error" in reply:
        raise StorageError(f"kv-rest: {reply['error']}")
    return reply.get("result")
