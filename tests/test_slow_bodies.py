"""Slow request bodies under the production server: no thread is held past the body deadline.

Each test runs a real gunicorn (gthread, 4 threads, the in-memory store so one worker) and talks
to it over raw sockets: a "stalled" request sends its headers and 1 byte of a longer body, then
nothing more.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import closing
from urllib.parse import urlsplit

import requests

from tests.test_gunicorn import gunicorn
from tests.vapi.payloads import STATUS_UPDATE

TOKEN = "slow-body-token"
SECRET = "slow-body-hmac-secret"
THREADS = 4


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def _head(path: str, length: int, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
             f"Content-Length: {length}", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _stall(url: str, path: str, headers: dict[str, str], length: int = 1000) -> socket.socket:
    """Headers and 1 byte of a ``length``-byte body, then silence."""
    sock = _connect(url)
    sock.sendall(_head(path, length, headers) + b"{")
    return sock


def _answer(sock: socket.socket, within: float) -> tuple[int | None, dict | None, bool]:
    """(status, JSON body, closed): what the server sends within ``within`` seconds."""
    deadline, data, closed = time.monotonic() + within, b"", False
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:  # the answer was read: a reset then means closed too
            closed = True
            break
        if not chunk:
            closed = True
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head:
        return None, None, closed
    status = int(head.split()[1])
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    return status, json.loads(body[:length]) if length else None, closed


def _seconds_to_health(url: str, limit: float = 15) -> float:
    """How long GET /health takes (``inf`` if it does not answer within ``limit``)."""
    started = time.monotonic()
    try:
        response = requests.get(f"{url}/health", timeout=limit)
    except requests.Timeout:
        return float("inf")
    assert response.status_code == 200, response.text
    return time.monotonic() - started


def _seconds_to_webhook(url: str, limit: float = 15) -> float:
    started = time.monotonic()
    try:
        response = requests.post(f"{url}/vapi/webhook", data=json.dumps(STATUS_UPDATE),
                                 timeout=limit, headers={"Authorization": f"Bearer {TOKEN}",
                                                         "Content-Type": "application/json"})
    except requests.Timeout:
        return float("inf")
    assert response.status_code == 200, response.text
    return time.monotonic() - started


def _env(**settings: str) -> dict[str, str]:
    return {"GUNICORN_THREADS": str(THREADS), **settings}


def test_stalled_unauthenticated_bodies_do_not_delay_health_or_an_authenticated_webhook(tmp_path):
    with gunicorn(_env(WEBHOOK_TOKEN=TOKEN), tmp_path / "gunicorn.log") as (url, _):
        stalled = [_stall(url, "/vapi/webhook", {}) for _ in range(20)]
        time.sleep(0.5)  # the worker has taken them all in before we measure
        health, webhook = _seconds_to_health(url), _seconds_to_webhook(url)
        answers = [_answer(sock, 2) for sock in stalled]
    assert health < 1, f"/health took {health:.2f}s"
    assert webhook < 1, f"the authenticated webhook took {webhook:.2f}s"
    assert answers == [(401, {"error": "unauthorized"}, True)] * 20


def test_with_hmac_only_stalled_signed_bodies_free_every_thread_within_the_body_timeout(tmp_path):
    # A signature and a fresh timestamp: nothing to refuse before the body is read.
    headers = {"X-Signature": "ab" * 32, "X-Timestamp": str(int(time.time()))}
    env = _env(VAPI_WEBHOOK_HMAC_SECRET=SECRET, BODY_READ_TIMEOUT_SECONDS="2")
    with gunicorn(env, tmp_path / "gunicorn.log") as (url, _):
        started = time.monotonic()
        stalled = [_stall(url, "/vapi/webhook", headers) for _ in range(THREADS)]
        time.sleep(0.5)  # every thread now waits on a stalled body
        health = _seconds_to_health(url)
        answered_after = time.monotonic() - started
        answers = [_answer(sock, 3) for sock in stalled]
    assert answered_after < 2 + 1, f"/health answered {answered_after:.2f}s after the stalls"
    assert health < 3
    assert [(status, body["error"], closed) for status, body, closed in answers] \
        == [(408, "request_timeout", True)] * THREADS


def test_a_stalled_body_on_pull_metadata_is_answered_408_and_its_connection_closed(tmp_path):
    env = _env(WEBHOOK_TOKEN=TOKEN, BODY_READ_TIMEOUT_SECONDS="1")
    with gunicorn(env, tmp_path / "gunicorn.log") as (url, _):
        started = time.monotonic()
        with closing(_stall(url, "/vapi/pull-metadata", {"X-Vapi-Secret": TOKEN})) as sock:
            status, body, closed = _answer(sock, 3)
        elapsed = time.monotonic() - started
        log = (tmp_path / "gunicorn.log").read_text()
    assert (status, body["error"], closed) == (408, "request_timeout", True)
    assert 1 <= elapsed < 2, elapsed
    assert "not received within 1s" in log and TOKEN not in log


def test_a_trickled_body_is_answered_408_at_the_deadline_whatever_it_sends(tmp_path):
    env = _env(WEBHOOK_TOKEN=TOKEN, BODY_READ_TIMEOUT_SECONDS="2")
    with gunicorn(env, tmp_path / "gunicorn.log") as (url, _):
        sock = _stall(url, "/ghl/outbound-call", {"Authorization": f"Bearer {TOKEN}"})
        stop = threading.Event()

        def trickle():  # 1 byte every 0.5 s: each read gets something, the total never ends
            while not stop.wait(0.5):
                try:
                    sock.send(b" ")
                except OSError:
                    return

        sender = threading.Thread(target=trickle)
        started = time.monotonic()
        sender.start()
        try:
            status, body, closed = _answer(sock, 4)
        finally:
            stop.set()
            sender.join()
            sock.close()
        elapsed = time.monotonic() - started
    assert (status, body["error"], closed) == (408, "request_timeout", True)
    assert elapsed < 2 + 1, elapsed


def test_an_oversized_body_refused_before_reading_frees_its_thread_at_once(tmp_path):
    env = _env(WEBHOOK_TOKEN=TOKEN, MAX_BODY_BYTES="1000")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with gunicorn(env, tmp_path / "gunicorn.log") as (url, _):
        stalled = [_stall(url, "/vapi/webhook", headers, length=5000) for _ in range(2 * THREADS)]
        time.sleep(0.5)
        health = _seconds_to_health(url)
        answers = [_answer(sock, 2) for sock in stalled]
    assert health < 1, f"/health took {health:.2f}s"
    assert [(status, body["error"], closed) for status, body, closed in answers] \
        == [(413, "request_entity_too_large", True)] * 2 * THREADS


def test_a_complete_body_keeps_its_connection_for_the_next_request(tmp_path):
    body = json.dumps(STATUS_UPDATE).encode()
    request = _head("/vapi/webhook", len(body), {"Authorization": f"Bearer {TOKEN}"}) + body
    with gunicorn(_env(WEBHOOK_TOKEN=TOKEN), tmp_path / "gunicorn.log") as (url, _), \
            closing(_connect(url)) as sock:
        sock.sendall(request)
        first = _answer(sock, 1)
        sock.sendall(request)
        second = _answer(sock, 1)
    assert first == second == (200, {"status": "received"}, False)
