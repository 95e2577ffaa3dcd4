"""The production server: gunicorn with gunicorn.conf.py, one run per backend."""

from __future__ import annotations

import os
import runpy
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

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


@pytest.mark.parametrize("backend_env", ["memory", "redis", "kv-rest"], indirect=True)
def test_health_under_gunicorn(backend_env, tmp_path):
    port = _free_port()
    env = {"PATH": os.environ["PATH"], "HOST": "127.0.0.1", "PORT": str(port),
           "WEB_CONCURRENCY": "2", **backend_env}
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        server = subprocess.Popen([str(GUNICORN)], cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        body = _wait_for_health(port, server)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    output = log.read_text()
    expected_workers = 1 if body["storage"]["backend"] == "memory" else 2
    assert body["status"] == "ok"
    assert body["storage"]["available"] is True
    assert output.count("Booting worker") == expected_workers, output
    assert output.count("[STATE_STORAGE] Using") == 1, output  # logged once, in the master


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
