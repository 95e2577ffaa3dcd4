"""Worker recycling (gunicorn's max_requests): rare enough to cost under 1 % (every ~100,000
requests, GUNICORN_MAX_REQUESTS), and never with the in-memory store: a recycled worker starts
with an empty dict."""

from __future__ import annotations

import json

import pytest
import requests
from gunicorn.app.base import Application

from tests.test_gunicorn import ROOT, gunicorn
from tests.vapi.payloads import EOCR_CURRENT


class ConfigOnly(Application):
    """gunicorn's own loader for gunicorn.conf.py: the file run, its known names ``cfg.set``."""

    def load_config(self):
        self.load_config_from_file(str(ROOT / "gunicorn.conf.py"))

    def load(self):
        raise NotImplementedError


REDIS = {"REDIS_URL": "redis://127.0.0.1:6379/0"}


@pytest.mark.parametrize(("env", "expected"), [
    ({}, (0, 0)),
    ({"STATE_STORAGE": "memory"}, (0, 0)),
    ({"STATE_STORAGE": "memory", "GUNICORN_MAX_REQUESTS": "500"}, (0, 0)),
    (REDIS, (100_000, 10_000)),
    ({**REDIS, "GUNICORN_MAX_REQUESTS": "500"}, (500, 50)),
    ({**REDIS, "GUNICORN_MAX_REQUESTS": "0"}, (0, 0)),
])
def test_max_requests_is_0_with_the_memory_store(monkeypatch, env, expected):
    monkeypatch.setenv("LOG_FORMAT", "text")  # gunicorn.conf.py sets a default: keep it local
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    cfg = ConfigOnly().cfg
    assert (cfg.max_requests, cfg.max_requests_jitter) == expected


TOOL_CALL = {"message": {"type": "tool-calls", "call": {"id": "call-2"}, "toolCallList": [
    {"id": "t1", "function": {"name": "get_call_context", "arguments": "{}"}}]}}


def test_the_memory_store_outlives_2500_requests_under_gunicorn(tmp_path):
    """More requests than GUNICORN_MAX_REQUESTS asks for (500 + jitter 50): the one worker is
    never recycled, so the call stored at the start is still there at the end."""
    log = tmp_path / "gunicorn.log"
    with gunicorn({"GUNICORN_THREADS": "2", "GUNICORN_MAX_REQUESTS": "500"}, log) as (url, body):
        assert body["storage"]["backend"] == "memory"
        session = requests.Session()
        webhook = f"{url}/vapi/webhook"
        assert session.post(webhook, json=EOCR_CURRENT, timeout=10).status_code == 200
        for _ in range(2500):
            assert session.get(f"{url}/health", timeout=10).status_code == 200
        answer = session.post(webhook, json=TOOL_CALL, timeout=10).json()
    output = log.read_text()
    assert "Autorestarting worker" not in output
    assert output.count("Booting worker") == 1, output[-2000:]
    stored = json.loads(answer["results"][0]["result"])
    assert stored["summary"] == "Booked a cleaning on Tuesday."


def test_a_shared_store_worker_is_recycled_after_gunicorn_max_requests(tmp_path, redis_url):
    """The other side of the rule above: with Redis, GUNICORN_MAX_REQUESTS is obeyed."""
    log = tmp_path / "gunicorn.log"
    env = {"GUNICORN_THREADS": "2", "GUNICORN_MAX_REQUESTS": "500", "WEB_CONCURRENCY": "1",
           "REDIS_URL": redis_url}
    with gunicorn(env, log) as (url, body):
        assert body["storage"]["backend"] == "redis"
        session = requests.Session()
        for _ in range(1200):
            assert session.get(f"{url}/health", timeout=10).status_code == 200
    output = log.read_text()
    assert "Autorestarting worker" in output, output[-2000:]
    assert output.count("Booting worker") >= 2
