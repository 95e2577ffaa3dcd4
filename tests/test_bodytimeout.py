"""The body deadline middleware in process, over a real loopback connection dressed as gunicorn's.

The app reads its body from the server end of the connection (``wsgi.input`` a buffered file on
it, which like gunicorn's reader loops on recv until it has what it asked for) and sees the
socket as ``environ["gunicorn.socket"]``. tests/test_slow_bodies.py runs the real gunicorn.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from werkzeug.test import EnvironBuilder

from vapi_bridge import create_app

TOKEN = "body-deadline-token"


@pytest.fixture
def connection() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(client end, server end) of a TCP loopback connection."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    with client, server:
        yield client, server


def call(app, server: socket.socket, path: str, length: int) -> tuple[int, dict]:
    environ = EnvironBuilder(path=path, method="POST", content_type="application/json",
                             headers={"Authorization": f"Bearer {TOKEN}"}).get_environ()
    environ.update({"CONTENT_LENGTH": str(length), "gunicorn.socket": server,
                    "wsgi.input": server.makefile("rb")})
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"] = int(status.split()[0])

    iterable = app(environ, start_response)
    try:
        body = b"".join(iterable)
    finally:
        iterable.close()  # as gunicorn does once the answer is written
    return answer["status"], json.loads(body)


@contextmanager
def trickling(client: socket.socket, every: float, for_at_most: float):
    """Send 1 byte every ``every`` s (then close) while the block runs."""
    stop = threading.Event()

    def trickle():
        deadline = time.monotonic() + for_at_most
        while not stop.wait(every) and time.monotonic() < deadline:
            client.send(b" ")
        client.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=trickle)
    sender.start()
    try:
        yield
    finally:
        stop.set()
        sender.join()


def read_side_is_shut(server: socket.socket) -> bool:
    """A shut read side gives the end of the stream at once; an open one makes recv wait."""
    server.settimeout(0.3)
    try:
        while server.recv(65536):
            pass  # what arrived before the shutdown is still handed out
    except TimeoutError:
        return False
    return True


def test_a_trickled_body_is_answered_408_at_the_deadline_and_its_read_side_shut(connection):
    client, server = connection
    app = create_app({"WEBHOOK_TOKEN": TOKEN, "BODY_READ_TIMEOUT_SECONDS": "0.5"})
    client.sendall(b"{")
    started = time.monotonic()
    with trickling(client, every=0.1, for_at_most=3):
        status, body = call(app, server, "/vapi/webhook", length=1000)
        elapsed = time.monotonic() - started
        shut = read_side_is_shut(server)
    assert (status, body["error"]) == (408, "request_timeout")
    assert 0.5 <= elapsed < 1, elapsed
    assert shut


def test_a_body_the_answer_left_unread_gets_its_read_side_shut(connection):
    client, server = connection
    app = create_app({"WEBHOOK_TOKEN": TOKEN, "MAX_BODY_BYTES": "100"})
    client.sendall(b"{")  # of 5000: refused by its Content-Length, before it is read
    status, body = call(app, server, "/vapi/webhook", length=5000)
    assert (status, body["error"]) == (413, "request_entity_too_large")
    assert read_side_is_shut(server)


def test_a_body_read_in_full_leaves_the_connection_open_for_the_next_request(connection):
    client, server = connection
    app = create_app({"WEBHOOK_TOKEN": TOKEN, "BODY_READ_TIMEOUT_SECONDS": "0.5"})
    payload = json.dumps({"message": {"type": "status-update", "status": "in-progress"}})
    client.sendall(payload.encode())
    status, body = call(app, server, "/vapi/webhook", length=len(payload))
    time.sleep(0.6)  # past the deadline: its timer must have been stopped
    assert (status, body) == (200, {"status": "received"})
    assert not read_side_is_shut(server)
