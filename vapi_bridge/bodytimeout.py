"""Slow request bodies hold no thread: a deadline on reading them, and no read after an answer.

Under gunicorn a worker thread reads the body from the client's socket
(``environ["gunicorn.socket"]``). Two things keep that thread from waiting on a slow client:

* Reading the body ends ``timeout`` seconds after the request reached the app. One watchdog
  thread per process (not a timer per request: a thread start costs ~140 µs) shuts the
  socket's read side then (``SHUT_RD``): a blocked read returns at once, and so does every
  later one, so a client trickling a byte at a time is cut off too. The app gets a 408
  (werkzeug's ``RequestTimeout``, answered as JSON by errors.py).
* After any answer given before the whole body was read (401, 413, the 408), the read side is
  shut as well. Otherwise gunicorn's gthread worker drains the rest of the body in the thread
  (up to 5 s) before reusing the connection, or lingers up to 2 s in ``close_graceful`` on its
  main loop; with the read side shut both see the end of the stream at once and the connection
  closes. (gunicorn drops a ``Connection`` header set by the app: shutting is what closes it.)

Elsewhere (Vercel, the werkzeug dev server, the test client) the body has already arrived or
the server handles it: without a gunicorn socket this middleware passes everything through.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import RequestTimeout
from werkzeug.wsgi import ClosingIterator

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable], Iterable[bytes]]


class BodyReadDeadline:
    """WSGI middleware: the body must be received within ``timeout`` s (see module doc)."""

    def __init__(self, app: WSGIApp, timeout: float):
        self.app, self.timeout = app, timeout

    def __call__(self, wsgi_env: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        sock = wsgi_env.get("gunicorn.socket")
        # Plain HTTP/1.x only: an HTTP/2 socket carries other streams, and shutting down an
        # SSLSocket drops its TLS state. Our gunicorn runs neither (TLS ends at the proxy).
        if (not isinstance(sock, socket.socket) or isinstance(sock, ssl.SSLSocket)
                or not wsgi_env.get("SERVER_PROTOCOL", "").startswith("HTTP/1")
                or not _has_body(wsgi_env)):
            return self.app(wsgi_env, start_response)
        body = _DeadlineInput(wsgi_env, sock, time.monotonic() + self.timeout, self.timeout)
        wsgi_env["wsgi.input"] = body
        try:
            return ClosingIterator(self.app(wsgi_env, start_response), body.finish)
        except BaseException:
            body.finish()
            raise


class _DeadlineInput:
    """``wsgi.input`` whose reads end at the deadline; knows whether the body was all read."""

    def __init__(self, wsgi_env: dict[str, Any], sock: socket.socket, deadline: float,
                 timeout: float):
        self._stream, self._sock = wsgi_env["wsgi.input"], sock
        self._deadline, self._timeout = deadline, timeout
        self._where = f"{wsgi_env.get('REQUEST_METHOD')} {wsgi_env.get('PATH_INFO')}"
        self._length = _content_length(wsgi_env)  # None: chunked, complete at its end
        self._received = 0
        self._complete = False
        self._expired = False
        self._watched = False
        self.settled = False  # complete or answered: the watchdog leaves it alone

    def read(self, size: int | None = -1) -> bytes:
        return self._timed(self._stream.read, size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._timed(self._stream.readline, size)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self):
        return iter(self.readline, b"")

    def finish(self) -> None:
        """After the answer: no more watching; a body not all read gets no further read."""
        self.settled = True
        if not self._complete:
            _shut_read(self._sock)

    def _timed(self, read: Callable[[Any], bytes], size: int | None) -> bytes:
        if not self._watched and not self._complete:
            # From the first read: a request answered without reading needs no watching.
            self._watched = True
            _WATCHDOG.watch(self, self._deadline)
        try:
            data = read(size)
        except Exception:  # gunicorn's chunked reader raises when the stream ends early
            if self._expired:
                raise self._timed_out() from None
            raise
        self._received += len(data)
        if self._length is not None:
            self._complete = self._received >= self._length
        elif not data and size != 0 and not self._expired:
            self._complete = True  # the end of a chunked body
        if self._expired and not self._complete:
            raise self._timed_out()
        if self._complete:
            self.settled = True
        return data

    def expire(self) -> None:
        self._expired = True
        _shut_read(self._sock)

    def _timed_out(self) -> RequestTimeout:
        log.warning("[HTTP] Request body not received within %gs on %s (%d bytes): 408",
                    self._timeout, self._where, self._received)
        return RequestTimeout(f"The request body was not received within {self._timeout:g}s.")


class _Watchdog:
    """One daemon thread per process: expires the bodies still unread at their deadline."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, _DeadlineInput]] = []  # a heap by deadline
        self._order = itertools.count()  # ties never compare two bodies
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, body: _DeadlineInput, deadline: float) -> None:
        with self._wake:
            heapq.heappush(self._due, (deadline, next(self._order), body))
            if self._thread is None or not self._thread.is_alive():  # first use, or forked
                self._thread = threading.Thread(target=self._run, name="body-deadline",
                                                daemon=True)
                self._thread.start()
            elif self._due[0][2] is body:
                self._wake.notify()  # due before whatever the thread waits for

    def _run(self) -> None:
        with self._wake:
            while True:
                now = time.monotonic()
                while self._due and (self._due[0][2].settled or self._due[0][0] <= now):
                    _, _, body = heapq.heappop(self._due)
                    if not body.settled:
                        body.expire()
                self._wake.wait(self._due[0][0] - now if self._due else None)


_WATCHDOG = _Watchdog()


def _has_body(wsgi_env: dict[str, Any]) -> bool:
    chunked = "chunked" in wsgi_env.get("HTTP_TRANSFER_ENCODING", "").lower()
    return chunked or bool(_content_length(wsgi_env))


def _content_length(wsgi_env: dict[str, Any]) -> int | None:
    try:
        return int(wsgi_env["CONTENT_LENGTH"])
    except (KeyError, ValueError):
        return None


def _shut_read(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed, or reset by the client
        sock.shutdown(socket.SHUT_RD)
