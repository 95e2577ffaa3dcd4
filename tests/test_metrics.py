"""GET /metrics: off without METRICS_TOKEN, the token checked, and what each path counts;
then 3 gunicorn workers on Redis whose scrapes all add up to what was sent.

In-process, the counters are process-wide (prometheus-client's registry), so each test
reads the change between two scrapes.
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import socket
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import WEBHOOK_AUTH, WEBHOOK_TOKEN
from tests.test_gunicorn import gunicorn
from tests.vapi.payloads import EOCR_CURRENT, STATUS_UPDATE, tool_calls
from vapi_bridge import create_app
from vapi_bridge.config import ConfigError
from vapi_bridge.integrations.ghl import GhlRetry

METRICS_TOKEN = "metrics-token-0123456789"
SCRAPE = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def scrape(client) -> dict[tuple, float]:
    """``{(sample name, sorted labels): value}`` from one authorised scrape."""
    response = client.get("/metrics", headers=SCRAPE)
    assert response.status_code == 200, response.data
    assert response.content_type.startswith("text/plain; version=")
    return samples(response.get_data(as_text=True))


def samples(text: str) -> dict[tuple, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def changes(before: dict, after: dict) -> dict[tuple, float]:
    """Our samples that moved (a new series counts from 0); timings and scrapes left out."""
    return {key: value - before.get(key, 0) for key, value in after.items()
            if value != before.get(key, 0) and key[0].startswith("vapi_bridge_")
            and not key[0].endswith(("_sum", "_bucket")) and ("route", "/metrics") not in key[1]}


def key(name: str, **labels: str) -> tuple:
    return name, tuple(sorted(labels.items()))


def eocr(call_id: str) -> dict:
    payload = copy.deepcopy(EOCR_CURRENT)
    payload["message"]["call"]["id"] = call_id
    return payload


def post(client, payload, headers=WEBHOOK_AUTH):
    data = payload if isinstance(payload, bytes) else json.dumps(payload)
    return client.post("/vapi/webhook", data=data, headers=headers,
                       content_type="application/json")


@pytest.fixture
def app(prefix):
    return create_app({"METRICS_TOKEN": METRICS_TOKEN, "WEBHOOK_TOKEN": WEBHOOK_TOKEN,
                       "STATE_STORAGE_PREFIX": prefix})


def test_off_without_metrics_token_and_nothing_counted(prefix):
    counted = create_app({"METRICS_TOKEN": METRICS_TOKEN}).test_client()
    before = scrape(counted)
    off = create_app({"STATE_STORAGE_PREFIX": prefix}).test_client()
    assert off.get("/metrics", headers=SCRAPE).status_code == 404
    assert post(off, STATUS_UPDATE).status_code == 200
    on_again = create_app({"METRICS_TOKEN": METRICS_TOKEN}).test_client()
    assert changes(before, scrape(on_again)) == {}


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token-0123456789",
                                           f"Basic {METRICS_TOKEN}", f"Bearer {METRICS_TOKEN}x",
                                           "Bearer"])
def test_a_wrong_or_missing_token_is_401(app, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = app.test_client().get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.get_json() == {"error": "unauthorized"}


def test_a_short_metrics_token_stops_start_up():
    with pytest.raises(ConfigError, match="METRICS_TOKEN must be at least 16"):
        create_app({"METRICS_TOKEN": "short"})


def test_each_webhook_outcome_is_counted_by_bounded_type(app):
    client = app.test_client()
    before = scrape(client)
    assert post(client, eocr("m-call-1")).status_code == 200
    assert post(client, STATUS_UPDATE).status_code == 200
    assert post(client, {"message": {"type": "conversation-update", "messages": []}}).status_code \
        == 200
    assert post(client, {"message": {"type": "+14155550123 call-secret"}}).status_code == 200
    assert post(client, b"{broken").status_code == 400
    assert post(client, {"message": {"type": "end-of-call-report"}}).status_code == 400
    assert post(client, STATUS_UPDATE, headers={}).status_code == 401
    assert post(client, STATUS_UPDATE, headers={"X-Vapi-Secret": "wrong"}).status_code == 401
    after = scrape(client)
    messages = {k: v for k, v in changes(before, after).items()
                if k[0] == "vapi_bridge_messages_total"}
    total = "vapi_bridge_messages_total"
    assert messages == {
        key(total, type="end-of-call-report", outcome="handled"): 1,
        key(total, type="status-update", outcome="handled"): 1,
        key(total, type="conversation-update", outcome="ignored"): 1,
        key(total, type="other", outcome="ignored"): 1,  # a type of its own: no free text
        key(total, type="other", outcome="invalid"): 1,
        key(total, type="end-of-call-report", outcome="invalid"): 1,
        key(total, type="other", outcome="unauthorized"): 2,
    }
    webhook = key("vapi_bridge_request_seconds_count", route="/vapi/webhook")
    assert after[webhook] - before.get(webhook, 0) == 8
    assert "m-call-1" not in json.dumps(list(after)) and "+1415" not in json.dumps(list(after))


def test_routes_are_labelled_by_their_rule_never_the_path(app):
    client = app.test_client()
    before = scrape(client)
    client.get("/no/such/path/+14155550123")
    client.get("/health?token=abc")
    moved = changes(before, scrape(client))
    assert moved[key("vapi_bridge_request_seconds_count", route="unmatched")] == 1
    assert moved[key("vapi_bridge_request_seconds_count", route="/health")] == 1
    values = [value for _, labels in moved for _, value in labels]
    assert not any("+1415" in value or "token" in value for value in values)


def test_tool_calls_by_registered_name_else_unknown(app):
    client = app.test_client()
    before = scrape(client)
    payload = tool_calls({"id": "t-1", "function": {"name": "get_call_context", "arguments": {}}},
                         {"id": "t-2", "function": {"name": "drop_tables", "arguments": {}}})
    assert post(client, payload).status_code == 200
    moved = changes(before, scrape(client))
    assert moved[key("vapi_bridge_tool_calls_total", tool="get_call_context", outcome="ok")] == 1
    assert moved[key("vapi_bridge_tool_calls_total", tool="unknown", outcome="error")] == 1


@pytest.fixture
def no_ghl_backoff(monkeypatch):
    """urllib3's sleeps between the GoHighLevel client's retries cut to nothing (the same
    requests are made)."""
    monkeypatch.setattr(GhlRetry, "get_backoff_time", lambda self: 0.0)


def test_deliveries_outside_requests_and_the_outbox(integrations_env, ghl, slack, prefix,
                                                    no_ghl_backoff):
    app = create_app({**integrations_env, "METRICS_TOKEN": METRICS_TOKEN,
                      "CRON_SECRET": "cron-secret", "RETRY_BASE_DELAY_SECONDS": "0.01",
                      "STATE_STORAGE_PREFIX": prefix})
    client = app.test_client()
    before = scrape(client)
    assert post(client, eocr("m-call-ok")).status_code == 200
    ghl.fail_next(4, 500)  # the first request and urllib3's 3 retries: the note is parked
    assert post(client, eocr("m-call-parked")).status_code == 200
    after = scrape(client)
    moved = changes(before, after)
    deliveries = "vapi_bridge_deliveries_total"
    assert {k: v for k, v in moved.items() if k[0] == deliveries} == {
        key(deliveries, step="note", status="ok"): 1,
        key(deliveries, step="note", status="parked"): 1,
        key(deliveries, step="tags", status="skipped"): 2,
        key(deliveries, step="slack", status="ok"): 2,
    }
    outside = "vapi_bridge_outside_request_seconds_count"
    assert moved[key(outside, service="ghl")] == 2  # one per call, its retries inside
    assert moved[key(outside, service="slack")] == 2
    assert after[key("vapi_bridge_outbox_jobs", state="parked")] == 1
    assert after[key("vapi_bridge_store_available")] == 1

    time.sleep(0.1)  # due again after RETRY_BASE_DELAY_SECONDS
    drained = client.post("/cron/retry", headers={"Authorization": "Bearer cron-secret"})
    assert drained.get_json()["delivered"] == 1
    final = scrape(client)
    assert changes(after, final).get(key(deliveries, step="note", status="retried-ok")) == 1
    assert final[key("vapi_bridge_outbox_jobs", state="parked")] == 0
    assert len(ghl.notes) == 2


@pytest.mark.parametrize("fallback", ["none", "memory"])
def test_a_store_that_does_not_answer_is_0_and_the_scrape_still_answers(fallback):
    """Without a fallback the read fails; with one, the in-process stand-in answers, and its
    empty outbox is not the store's."""
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app({"METRICS_TOKEN": METRICS_TOKEN, "REDIS_URL": f"redis://127.0.0.1:{port}/0",
                      "STATE_STORAGE_FALLBACK": fallback, "STATE_STORAGE_TIMEOUT": "0.2",
                      "STATE_STORAGE_CONNECT_TIMEOUT": "0.2"})
    after = scrape(app.test_client())
    assert after[key("vapi_bridge_store_available")] == 0
    assert not any(name == "vapi_bridge_outbox_jobs" for name, _ in after)


# Under gunicorn: 3 worker processes, each counting into its own files; any one answers.
def scrape_over_http(url: str) -> dict[tuple, float]:
    response = requests.get(f"{url}/metrics", headers=SCRAPE, timeout=10)  # a new connection
    assert response.status_code == 200, response.text
    return samples(response.text)


def ours(scraped: dict[tuple, float]) -> dict[tuple, float]:
    """What was sent decides these exactly (timings, scrapes and gauges aside)."""
    return {k: v for k, v in scraped.items() if k[0] in (
        "vapi_bridge_messages_total", "vapi_bridge_deliveries_total",
        "vapi_bridge_tool_calls_total", "vapi_bridge_outside_request_seconds_count")}


def worker_pids(log: Path) -> list[int]:
    return [int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", log.read_text())]


@pytest.mark.parametrize("backend_env", ["redis"], indirect=True)
def test_three_workers_scrapes_equal_what_was_sent_whichever_answers(
        backend_env, integrations_env, ghl, slack, prefix, tmp_path):
    log = tmp_path / "gunicorn.log"
    env = {**backend_env, **integrations_env, "WEB_CONCURRENCY": "3",
           "METRICS_TOKEN": METRICS_TOKEN, "CRON_SECRET": "cron-secret",
           "RETRY_BASE_DELAY_SECONDS": "0.01", "STATE_STORAGE_PREFIX": prefix,
           "TMPDIR": str(tmp_path)}  # where gunicorn.conf.py makes the metrics directory
    with gunicorn(env, log) as (url, _):
        def send(payload, headers=WEBHOOK_AUTH) -> int:
            data = payload if isinstance(payload, bytes) else json.dumps(payload)
            return requests.post(f"{url}/vapi/webhook", data=data, timeout=30, headers={
                "Content-Type": "application/json", **headers}).status_code

        for n in range(3):
            assert send(eocr(f"g-call-{n}")) == 200
        ghl.fail_next(4, 500)  # the note's request and its 3 retries: parked
        assert send(eocr("g-call-parked")) == 200
        assert [send(STATUS_UPDATE) for _ in range(2)] == [200, 200]
        assert [send({"message": {"type": "conversation-update"}}) for _ in range(2)] == [200, 200]
        assert send({"message": {"type": "made-up"}}) == 200
        assert send(b"{broken") == send({"message": {"type": "end-of-call-report"}}) == 400
        assert send(STATUS_UPDATE, headers={}) == send(STATUS_UPDATE, headers={
            "X-Vapi-Secret": "wrong"}) == 401
        assert send(tool_calls(
            {"id": "g-t1", "function": {"name": "get_call_context", "arguments": {}}},
            {"id": "g-t2", "function": {"name": "nope", "arguments": {}}})) == 200

        messages, deliveries = "vapi_bridge_messages_total", "vapi_bridge_deliveries_total"
        tools, outside = "vapi_bridge_tool_calls_total", "vapi_bridge_outside_request_seconds_count"
        sent = {
            key(messages, type="end-of-call-report", outcome="handled"): 4,
            key(messages, type="status-update", outcome="handled"): 2,
            key(messages, type="conversation-update", outcome="ignored"): 2,
            key(messages, type="other", outcome="ignored"): 1,
            key(messages, type="other", outcome="invalid"): 1,
            key(messages, type="end-of-call-report", outcome="invalid"): 1,
            key(messages, type="other", outcome="unauthorized"): 2,
            key(messages, type="tool-calls", outcome="handled"): 1,
            key(deliveries, step="note", status="ok"): 3,
            key(deliveries, step="note", status="parked"): 1,
            key(deliveries, step="tags", status="skipped"): 4,
            key(deliveries, step="slack", status="ok"): 4,
            key(tools, tool="get_call_context", outcome="ok"): 1,
            key(tools, tool="unknown", outcome="error"): 1,
            key(outside, service="ghl"): 4,
            key(outside, service="slack"): 4,
        }
        for _ in range(9):
            scraped = scrape_over_http(url)
            assert ours(scraped) == sent
            assert scraped[key("vapi_bridge_outbox_jobs", state="parked")] == 1
            assert scraped[key("vapi_bridge_store_available")] == 1
            assert scraped[key("vapi_bridge_workers")] == 3
        assert len(ghl.notes) == 3 and len(slack.messages) == 4

        assert requests.get(f"{url}/metrics", timeout=10, headers={
            "Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
        time.sleep(0.1)  # the parked note is due again
        retried = requests.post(f"{url}/cron/retry", timeout=30,
                                headers={"Authorization": "Bearer cron-secret"})
        assert retried.json()["delivered"] == 1
        sent[key(deliveries, step="note", status="retried-ok")] = 1
        sent[key(outside, service="ghl")] += 1
        scraped = scrape_over_http(url)
        assert ours(scraped) == sent
        assert scraped[key("vapi_bridge_outbox_jobs", state="parked")] == 0

        # A worker killed: gunicorn starts another; the dead one's counts stay in the totals,
        # its live gauge goes (child_exit), so the workers are 3 again, not 4.
        [metrics_dir] = tmp_path.glob("vapi-bridge-metrics-*")
        dead = worker_pids(log)[0]
        os.kill(dead, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while len(worker_pids(log)) < 4 or not list(
                metrics_dir.glob(f"gauge_livesum_{worker_pids(log)[3]}.db")):
            assert time.monotonic() < deadline, "no new worker serving"
            time.sleep(0.05)
        assert not list(metrics_dir.glob(f"gauge_livesum_{dead}.db"))
        for _ in range(6):
            scraped = scrape_over_http(url)
            assert ours(scraped) == sent
            assert scraped[key("vapi_bridge_workers")] == 3
    assert not metrics_dir.exists()  # removed when the master stopped
