"""Base for the local HTTP fakes: a threaded pytest-httpserver with scripted failures."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from typing import Any, Protocol

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


class Contract(Protocol):
    """The published contract of the service a fake stands for (tests/contract): records what
    a request or the fake's own answer breaks; the conftest fails the test."""

    def check_request(self, request: Request) -> None: ...

    def check_response(self, request: Request, response: Response) -> None: ...


class QuickStopServer(HTTPServer):
    """Polls for shutdown every 20 ms, not werkzeug's 0.5 s: each stop no longer costs half
    a second (``thread_target`` is pytest-httpserver's documented hook)."""

    contract: Contract | None = None  # set by the fake it serves

    def thread_target(self) -> None:
        assert self.server is not None
        self.server.serve_forever(poll_interval=0.02)

    def respond_nohandler(self, request: Request, extra_message: str = "") -> Response:
        """A request no route takes is still checked: one to an operation the real service
        does not have must fail the test, not only get this 500."""
        if self.contract is not None:
            self.contract.check_request(request)
        return super().respond_nohandler(request, extra_message)


class Fake:
    contract: Contract | None = None  # subclasses name the service's contract

    def __init__(self):
        self.server = QuickStopServer(host="127.0.0.1", threaded=True)
        self.server.contract = self.contract
        self.lock = threading.Lock()
        self.requests: list[Request] = []
        self._failures: deque[tuple[int, dict[str, str]]] = deque()
        self.delay = 0.0
        self.in_flight = 0
        self.most_in_flight = 0  # requests being answered at once, at most (with a delay)

    @property
    def url(self) -> str:
        return self.server.url_for("/").rstrip("/")

    def start(self):
        self.server.start()
        return self

    def stop(self) -> None:
        if self.server.is_running():
            self.server.stop()

    def fail_next(self, count: int, status: int = 500, headers: dict[str, str] | None = None):
        """The next ``count`` requests get ``status`` (before any state changes)."""
        self._failures.extend([(status, headers or {})] * count)

    def route(self, pattern, method: str, handler) -> None:
        self.server.expect_request(pattern, method=method).respond_with_handler(
            lambda request: self._checked_handle(request, handler))

    def _checked_handle(self, request: Request, handler) -> Response:
        """Every request and every answer (scripted failures too) against the contract."""
        if self.contract is not None:
            self.contract.check_request(request)
        response = self._handle(request, handler)
        if self.contract is not None:
            self.contract.check_response(request, response)
        return response

    def _handle(self, request: Request, handler) -> Response:
        with self.lock:
            self.requests.append(request)
            failure = self._failures.popleft() if self._failures else None
        if self.delay:
            with self.lock:
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
            time.sleep(self.delay)
            with self.lock:
                self.in_flight -= 1
        if failure:
            status, headers = failure
            message = ["scripted failure"] if status == 422 else "scripted failure"  # GHL's shapes
            return json_response({"statusCode": status, "message": message}, status, headers)
        with self.lock:
            return handler(request)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers or {},
                    content_type="application/json")
