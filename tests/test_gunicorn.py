"""The production server: gunicorn with gunicorn.conf.py, one run per backend."""

from __future__ import annotations

import json
import os
import runpy
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.conftest import WEBHOOK_AUTH
from tests.vapi.payloads import EOCR_CURRENT, STATUS_UPDATE

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _conf(env: dict[str, str]) -> dict:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_memory_store_runs_one_worker_whatever_web_concurrency_says():
    conf = _conf({"WEB_CONCURRENCY": "4"})
    assert conf["workers"] == 1 and conf["threads"] >= 4


def test_shared_store_runs_several_workers():
    conf = _conf({"REDIS_URL": "redis://127.0.0.1:6379/0", "WEB_CONCURRENCY": "3", "PORT": "9123"})
    assert conf["workers"] == 3
    assert conf["bind"] == "0.0.0.0:9123"


def test_access_log_on_stdout_unless_access_log_is_false():
    assert _conf({})["accesslog"] == "-"
    assert _conf({"ACCESS_LOG": "false"})["accesslog"] is None
    assert _conf({"ACCESS_LOG": "TRUE"})["accesslog"] == "-"


@contextmanager
def gunicorn(env: dict[str, str], log: Path):
    """Serve the app with gunicorn.conf.py; yields (base URL, /health body)."""
    port = _free_port()
    env = {"PATH": os.environ["PATH"], "HOST": "127.0.0.1", "PORT": str(port),
           "WEB_CONCURRENCY": "2", **env}
    with log.open("w") as out:
        server = subprocess.Popen([str(GUNICORN)], cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        yield f"http://127.0.0.1:{port}", _wait_for_health(port, server)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


@pytest.mark.parametrize("backend_env", ["memory", "redis", "kv-rest"], indirect=True)
def test_health_under_gunicorn(backend_env, tmp_path):
    log = tmp_path / "gunicorn.log"
    with gunicorn(backend_env, log) as (_, body):
        pass
    output = log.read_text()
    expected_workers = 1 if body["storage"]["backend"] == "memory" else 2
    assert body["status"] == "ok"
    assert body["storage"]["available"] is True
    assert output.count("Booting worker") == expected_workers, output
    # Logged once by each worker process, which builds its own app.
    assert output.count("[STATE_STORAGE] Using") == expected_workers, output


def _wait_for_health(port: int, server: subprocess.Popen) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.poll() is None, "gunicorn exited"
        try:
            response = requests.get(f"http://127.0.0.1:{port}/health", timeout=2)
        except requests.ConnectionError:
            time.sleep(0.1)
            continue
        assert response.status_code == 200, response.text
        return response.json()
    raise AssertionError("gunicorn did not answer /health within 30 s")


ANSWERS = [
    (EOCR_CURRENT, 200, {"status": "received"}),
    (STATUS_UPDATE, 200, {"status": "received"}),
    ({"message": {"type": "tool-calls", "call": {"id": "call-2"}, "toolCallList": [
        {"id": "t1", "function": {"name": "get_call_context", "arguments": "{}"}},
        {"id": "t2", "function": {"name": "nope", "arguments": {}}}]}}, 200,
     {"results": [{"toolCallId": "t1", "name": "get_call_context", "result": "<from store>"},
                  {"toolCallId": "t2", "name": "nope", "error": "Unknown tool: nope"}]}),
    ({"message": {"type": "function-call", "functionCall": {"name": "nope"}}}, 200,
     {"result": "Unknown tool: nope"}),
    ({"message": {"type": "assistant-request"}}, 200, {"assistantId": "asst_9"}),
    ({"message": {"type": "transfer-destination-request"}}, 200, {
        "destination": {"type": "number", "number": "+14155550123"},
        "message": {"type": "request-start", "content": "Transferring you now."}}),
    ({"message": {"type": "conversation-update", "messages": []}}, 200, {"status": "ignored"}),
    (b"{broken", 400, None),
    ({"message": {"type": "end-of-call-report"}}, 400, None),
]


@pytest.mark.parametrize("backend_env", ["redis"], indirect=True)
def test_each_message_type_is_answered_under_gunicorn(backend_env, tmp_path):
    env = {**backend_env, "WEBHOOK_TOKEN": "gunicorn-token", "VAPI_ASSISTANT_ID": "asst_9",
           "VAPI_TRANSFER_NUMBER": "+14155550123", "STATE_STORAGE_PREFIX": "vbtestgunicorn"}
    with gunicorn(env, tmp_path / "gunicorn.log") as (url, _):
        session = requests.Session()
        session.headers["Authorization"] = "Bearer gunicorn-token"
        for payload, status, answer in ANSWERS:
            data = payload if isinstance(payload, bytes) else json.dumps(payload)
            response = session.post(f"{url}/vapi/webhook", data=data, timeout=10,
                                    headers={"Content-Type": "application/json"})
            assert response.status_code == status, (payload, response.text)
            body = response.json()
            if answer and "results" in answer:  # the stored call comes back from the tool
                stored = json.loads(body["results"][0]["result"])
                assert stored["summary"] == "Booked a cleaning on Tuesday."
                body["results"][0]["result"] = "<from store>"
            if answer:
                assert body == answer
        assert requests.post(f"{url}/vapi/webhook", data=b"{}", timeout=10).status_code == 401
        token_in_query = requests.post(f"{url}/vapi/webhook?token=gunicorn-token", timeout=10,
                                       data=json.dumps({"message": {"type": "hang"}}))
        assert token_in_query.status_code == 200
        too_big = session.post(f"{url}/vapi/webhook", timeout=10,  # with the token
                               data=iter([b"x" * 1024 * 1024] * 11))  # chunked, 11 MiB
        assert too_big.status_code == 413
    assert "gunicorn-token" not in (tmp_path / "gunicorn.log").read_text()  # not even ?token=


@pytest.mark.parametrize("backend_env", ["redis"], indirect=True)
def test_50_concurrent_deliveries_give_one_note_and_one_slack_message(
        backend_env, integrations_env, ghl, slack, prefix, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    env = {**backend_env, **integrations_env, "WEB_CONCURRENCY": "3",
           "STATE_STORAGE_PREFIX": prefix, "CLIENTS_JSON": json.dumps([{
               "name": "Dental", "assistant_ids": ["asst-1"], "ghl_api_key": "pit-dental",
               "ghl_location_id": "loc-dental", "slack_channel_id": "C-dental",
               "outcome_tags": {"completed": "call-completed"}}])}
    body = json.dumps(EOCR_CURRENT)
    with gunicorn(env, tmp_path / "gunicorn.log") as (url, _):
        def deliver(_):
            return requests.post(f"{url}/vapi/webhook", data=body, timeout=30,
                                 headers={"Content-Type": "application/json",
                                          **WEBHOOK_AUTH}).status_code

        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(deliver, range(50)))
    assert statuses == [200] * 50
    assert len(ghl.notes) == 1 and ghl.notes[0]["token"] == "pit-dental"
    assert len(ghl.tags) == 1
    assert len(slack.messages) == 1 and slack.messages[0]["channel"] == "C-dental"
    log = (tmp_path / "gunicorn.log").read_text()
    assert log.count("Booting worker") == 3
