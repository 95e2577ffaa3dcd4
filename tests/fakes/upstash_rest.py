"""A local server speaking the Upstash / Vercel KV REST protocol, in front of a real Redis.

``POST /`` takes one command array, ``POST /pipeline`` a list of them; answers are
``{"result": ...}`` / ``{"error": ...}``; the Bearer token is checked. Served by
pytest-httpserver, whose ``log`` gives one entry per HTTP round trip.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


class UpstashRestFake:
    def __init__(self, redis_url: str, token: str):
        self.token = token
        # RESP2, as Upstash answers: WITHSCORES is a flat list of strings, not RESP3's pairs.
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True, protocol=2)
        # Raw replies as Redis sends them ("OK", ints, None), not redis-py's Python values.
        self.redis.response_callbacks.clear()
        self.server = HTTPServer(host="127.0.0.1", threaded=True)
        self.server.expect_request("/", method="POST").respond_with_handler(self._single)
        self.server.expect_request("/pipeline", method="POST").respond_with_handler(self._pipeline)

    @property
    def url(self) -> str:
        return self.server.url_for("/").rstrip("/")

    def start(self) -> UpstashRestFake:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.clear_log()
        if self.server.is_running():
            self.server.stop()

    def commands(self) -> list[Any]:
        """Every request body received so far, one per round trip."""
        return [json.loads(request.get_data()) for request, _ in self.server.log]

    def _single(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied:
            return denied
        reply, status = self._run(request.get_json())
        return _json(reply, status)

    def _pipeline(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied:
            return denied
        return _json([self._run(command)[0] for command in request.get_json()], 200)

    def _denied(self, request: Request) -> Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _json({"error": "Unauthorized"}, 401)
        return None

    def _run(self, command: Any) -> tuple[dict[str, Any], int]:
        if not isinstance(command, list) or not command:
            return {"error": "ERR command must be a non-empty array"}, 400
        try:
            return {"result": self.redis.execute_command(*command)}, 200
        except redis.ResponseError as exc:
            return {"error": str(exc)}, 400


def _json(body: Any, status: int) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")
