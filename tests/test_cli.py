"""``flask vapi-bridge ...``: through click's runner, and as real processes against Redis."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes.ghl_check import FakeGhlCheck
from tests.test_pipeline import PHONE, delivery, post, report
from vapi_bridge import create_app

ROOT = Path(__file__).resolve().parent.parent
DAILY_LIMIT = {"X-RateLimit-Daily-Remaining": "0"}  # a 429 GhlClient does not retry: fast
CALL_9 = {"id": "call-9", "assistantId": "asst-1", "endedReason": "customer-ended-call",
          "metadata": {"ghl": {"contactId": "c-9"}}, "analysis": {"summary": "Pulled."},
          "customer": {"number": PHONE}}


@pytest.fixture
def ghl():
    """conftest's GoHighLevel fake plus every read ``check`` makes (same fixture name, so
    ``integrations_env`` points at it)."""
    fake = FakeGhlCheck().start()
    yield fake
    fake.stop()


@pytest.fixture
def bridge(integrations_env):
    def make(**env):
        return create_app({**integrations_env, **env})

    return make


def run(app, *args):
    return app.test_cli_runner().invoke(args=["vapi-bridge", *args])


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{sock.getsockname()[1]}/0"


def park_note(app, ghl, call_id="call-1"):
    """The note of a call parked by the real pipeline (GoHighLevel's daily limit spent)."""
    ghl.fail_next(1, 429, DAILY_LIMIT)
    post(app, report(call_id=call_id))
    assert delivery(app, call_id)["note"]["status"] == "parked"


# check
DEFAULT_READS = [
    "OK   ghl (default) contacts.readonly (call reports, CRM tools): location loc-default",
    "OK   ghl (default) opportunities.readonly (CRM tools)",
    "OK   ghl (default) conversations.readonly (CRM tools)",
    "OK   ghl (default) locations/customFields.readonly (custom fields named by key):"
    " 1 contact custom field(s)"]
DEFAULT_WRITES = [
    "SKIP ghl (default) contacts.write (call reports, CRM tools): not verifiable without writing",
    "SKIP ghl (default) opportunities.write (CRM tools): not verifiable without writing",
    "SKIP ghl (default) conversations/message.write (CRM tools): not verifiable without writing"]


def ghl_lines(result):
    return [line for line in result.stdout.splitlines() if " ghl (" in line]


def test_check_with_every_service_up(bridge, ghl, vapi_api):
    ghl.add_custom_field("loc-default", "contact.lead_source", "fld-1")
    result = run(bridge(), "check")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("OK   store: memory")
    assert lines[1:] == [*DEFAULT_READS, *DEFAULT_WRITES,
                         "OK   slack (default): team Agency, bot user vapi-bridge",
                         "OK   vapi"]
    # One read-only request per read scope, each with the Version its operation accepts.
    assert [(r.method, r.path, r.headers["Version"], dict(r.args)) for r in ghl.requests] == [
        ("GET", "/contacts/search/duplicate", "2021-07-28",
         {"locationId": "loc-default", "email": "vapi-bridge-check@example.com"}),
        ("GET", "/opportunities/search", "2021-07-28", {"location_id": "loc-default",
                                                        "limit": "1"}),
        ("GET", "/conversations/search", "2021-04-15", {"locationId": "loc-default",
                                                        "limit": "1"}),
        ("GET", "/locations/loc-default/customFields", "2021-07-28", {"model": "contact"})]
    assert {r.headers["Authorization"] for r in ghl.requests} == {"Bearer pit-default"}
    assert ghl.upserts == [] and ghl.notes == [] and ghl.messages == []  # nothing written
    [listing] = vapi_api.requests
    assert (listing.method, listing.path, listing.args["limit"]) == ("GET", "/call", "1")


def test_check_proves_the_calendar_scope_when_a_calendar_is_set(bridge, ghl):
    ghl.add_calendar("cal-1", "loc-default", name="Cleanings")
    result = run(bridge(GHL_CALENDAR_ID="cal-1"), "check")
    assert result.exit_code == 0, result.output
    lines = ghl_lines(result)
    assert ("OK   ghl (default) calendars.readonly (calendar tools): calendar cal-1 (Cleanings)"
            in lines)
    assert ("SKIP ghl (default) calendars/events.write (calendar tools): not verifiable without"
            " writing") in lines
    [read] = [r for r in ghl.requests if r.path == "/calendars/cal-1"]
    assert read.method == "GET" and read.headers["Version"] == "2021-04-15"


@pytest.mark.parametrize("scope, feature", [("opportunities.readonly", "CRM tools"),
                                            ("conversations.readonly", "CRM tools"),
                                            ("calendars.readonly", "calendar tools")])
def test_check_names_the_missing_read_scope_and_exits_1(bridge, ghl, scope, feature):
    ghl.add_calendar("cal-1", "loc-default")
    ghl.refused_scopes.add(scope)
    result = run(bridge(GHL_CALENDAR_ID="cal-1"), "check")
    assert result.exit_code == 1
    [failed] = [line for line in ghl_lines(result) if line.startswith("FAIL")]
    assert failed == (f"FAIL ghl (default) {scope} ({feature}): ghl: HTTP 401 The token is not"
                      f" authorized for this scope. -> add the scope {scope} to the token in"
                      " GHL_API_KEY")
    assert sum(line.startswith("OK   ghl") for line in ghl_lines(result)) == 4  # the others


def test_check_warns_without_the_custom_fields_scope_and_exits_0(bridge, ghl):
    ghl.refused_scopes.add("locations/customFields.readonly")
    result = run(bridge(), "check")
    assert result.exit_code == 0, result.output
    assert ("WARN ghl (default) locations/customFields.readonly (custom fields named by key):"
            " ghl: HTTP 401 The token is not authorized for this scope. -> add the scope"
            " locations/customFields.readonly to the token in GHL_API_KEY (until then custom"
            " fields named by key in call metadata are dropped)") in ghl_lines(result)


def test_check_reports_a_refused_ghl_token_and_exits_1(bridge, ghl):
    ghl.fail_next(1, 401)
    result = run(bridge(), "check")
    assert result.exit_code == 1
    assert ghl_lines(result)[:2] == [
        "FAIL ghl (default) contacts.readonly (call reports, CRM tools): ghl: HTTP 401 scripted"
        " failure -> set GHL_API_KEY and GHL_LOCATION_ID (a token with contacts.readonly)",
        "SKIP ghl (default) opportunities.readonly, conversations.readonly,"
        " locations/customFields.readonly: not tried"]
    assert len(ghl.requests) == 1  # a wrong token would be refused every scope alike
    assert "OK   slack (default)" in result.stdout and "OK   vapi" in result.stdout


def test_check_stops_reading_ghl_when_it_is_unreachable(bridge, ghl):
    ghl.fail_next(1, 429, DAILY_LIMIT)
    result = run(bridge(), "check")
    assert result.exit_code == 1
    assert ghl_lines(result)[:2] == [
        "FAIL ghl (default) contacts.readonly (call reports, CRM tools): ghl: HTTP 429 scripted"
        " failure -> GoHighLevel unreachable: check GHL_API_BASE_URL and the network",
        "SKIP ghl (default) opportunities.readonly, conversations.readonly,"
        " locations/customFields.readonly: not tried"]
    assert len(ghl.requests) == 1


def test_check_names_the_scopes_of_each_client_by_its_features(bridge, ghl):
    clients = [{"name": "North", "ghl_api_key": "pit-north", "ghl_location_id": "loc-north",
                "ghl_calendar_id": "cal-gone"},
               {"name": "South", "ghl_api_key": "pit-south", "ghl_location_id": "loc-south",
                "ghl_incoming_webhook_urls": {"default": ghl.hook_url("default")}}]
    ghl.refused_scopes.add("opportunities.readonly")
    result = run(bridge(GHL_API_KEY=None, GHL_LOCATION_ID=None, CLIENTS_JSON=json.dumps(clients)),
                 "check")
    assert result.exit_code == 1
    lines = ghl_lines(result)
    assert ("FAIL ghl (North) opportunities.readonly (CRM tools): ghl: HTTP 401 The token is not"
            " authorized for this scope. -> add the scope opportunities.readonly to the token in"
            " ghl_api_key of client 'North'") in lines
    assert ("FAIL ghl (North) calendars.readonly (calendar tools): ghl: HTTP 400 Bad Request"
            " -> fix ghl_calendar_id of client 'North' in CLIENTS_JSON / CLIENTS_FILE") in lines
    # South's tools post to a workflow: its token needs only what call reports need.
    assert [line.split(":")[0] for line in lines if "(South)" in line] == [
        "OK   ghl (South) contacts.readonly (call reports)",
        "OK   ghl (South) locations/customFields.readonly (custom fields named by key)",
        "SKIP ghl (South) contacts.write (call reports)"]
    assert ghl.hooks == []


def test_check_names_the_client_setting_and_skips_what_it_cannot_test(bridge, slack):
    clients = [{"name": "North", "slack_webhook_url": slack.webhook_url},
               {"name": "South", "slack_bot_token": "not-a-bot-token", "slack_channel_id": "C1"}]
    app = bridge(GHL_API_KEY=None, GHL_LOCATION_ID=None, SLACK_BOT_TOKEN=None,
                 SLACK_CHANNEL_ID=None, VAPI_API_KEY=None, CLIENTS_JSON=json.dumps(clients))
    result = run(app, "check")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert "SKIP ghl (default): not configured" in lines
    assert ("SKIP slack (North): an incoming webhook cannot be tested without posting a message"
            in lines)
    assert ("FAIL slack (South): slack: invalid_auth -> fix slack_bot_token of client 'South'"
            " in CLIENTS_JSON / CLIENTS_FILE") in lines
    assert any(x.startswith("SKIP vapi: VAPI_API_KEY not set") for x in lines)
    assert slack.messages == []  # nothing was posted to test the webhook


def test_check_reports_a_wrong_vapi_key(bridge):
    result = run(bridge(VAPI_API_KEY="wrong"), "check")
    assert result.exit_code == 1
    assert "FAIL vapi: vapi: HTTP 401 Invalid Key -> set VAPI_API_KEY" in result.stdout


def test_check_reports_a_store_that_does_not_answer(bridge):
    result = run(bridge(REDIS_URL=closed_port_url()), "check")
    assert result.exit_code == 1
    assert "FAIL store: Redis does not answer -> check REDIS_URL" in result.stdout


# replay
def test_replay_delivers_and_is_safe_to_repeat(bridge, vapi_api, ghl, slack):
    vapi_api.calls["call-9"] = CALL_9
    app = bridge()
    first = run(app, "replay", "call-9")
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines()[0] == "call call-9 client default"
    assert "  note   ok (attempts 1)" in first.stdout
    assert "  slack  ok (attempts 1)" in first.stdout
    again = run(app, "replay", "call-9")
    assert again.exit_code == 0 and "  note   ok (attempts 0)" in again.stdout
    assert len(ghl.notes) == 1 and len(slack.messages) == 1
    assert "Pulled." in ghl.notes[0]["body"]


def test_replay_failures_exit_1(bridge, vapi_api):
    app = bridge()
    missing = run(app, "replay", "nope")
    assert missing.exit_code == 1 and "Vapi has no call nope" in missing.output
    keyless = run(bridge(VAPI_API_KEY=None), "replay", "call-9")
    assert keyless.exit_code == 1 and "set VAPI_API_KEY" in keyless.output
    assert run(app, "replay", "a:b").exit_code == 2  # not a usable call id
    vapi_api.stop()
    down = run(app, "replay", "call-9")
    assert down.exit_code == 1 and "Vapi unreachable" in down.output


# outbox
def test_outbox_lists_parked_jobs_as_a_table_and_as_json(bridge, ghl):
    app = bridge()
    park_note(app, ghl)
    table = run(app, "outbox")
    assert table.exit_code == 0
    header, row, counts = table.stdout.splitlines()
    assert header.split()[:4] == ["CALL", "ID", "STEP", "CLIENT"] and "DUE AT" in header
    assert row.split()[:4] == ["call-1", "note", "default", "1"]
    assert "HTTP 429" in row and row.split()[4].endswith("Z")
    assert counts == "parked=1 dead=0 due=0"
    as_json = run(app, "outbox", "--json")
    [job] = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert {k: job[k] for k in ("call_id", "step", "client", "contact_id", "attempts")} == {
        "call_id": "call-1", "step": "note", "client": "default",
        "contact_id": "ghl-contact-7", "attempts": 1}
    assert job["due_at"] > time.time() and "HTTP 429" in job["last_error"]
    assert "report" not in job
    assert PHONE not in table.output + as_json.output and "4155550123" not in as_json.output


def test_outbox_dead_lists_the_dead_letters(bridge, ghl):
    app = bridge()
    ghl.fail_next(1, 401)
    post(app, report())
    assert run(app, "outbox").stdout.splitlines()[1:] == ["parked=0 dead=1 due=0"]
    dead = run(app, "outbox", "--dead")
    assert "DIED AT" in dead.stdout.splitlines()[0]
    assert dead.stdout.splitlines()[1].split()[:4] == ["call-1", "note", "default", "1"]
    [job] = [json.loads(x) for x in run(app, "outbox", "--dead", "--json").stdout.splitlines()]
    assert job["dead_at"] and "HTTP 401" in job["last_error"]


# retry
def test_retry_runs_what_is_due_or_everything_with_now(bridge, ghl):
    app = bridge()
    park_note(app, ghl)
    not_due = run(app, "retry")
    assert not_due.exit_code == 0
    assert "Retried: delivered=0, parked=0, dead=0, busy=0, vanished=0" in not_due.stdout
    assert ghl.notes == []
    now = run(app, "retry", "--now")
    assert now.exit_code == 0, now.output
    assert "Retried: delivered=1, parked=0" in now.stdout
    assert "Outbox now: parked=0 dead=0 due=0" in now.stdout
    assert [n["contact_id"] for n in ghl.notes] == ["ghl-contact-7"]
    assert delivery(app)["note"] == {"status": "ok", "attempts": 2, "last_error": None}


def test_retry_parks_again_and_still_exits_0(bridge, ghl):
    app = bridge()
    park_note(app, ghl)
    ghl.fail_next(1, 429, DAILY_LIMIT)
    result = run(app, "retry", "--now")
    assert result.exit_code == 0
    assert "Retried: delivered=0, parked=1" in result.stdout
    assert delivery(app)["note"]["attempts"] == 2


def test_retry_dead_revives_the_dead_letters(bridge, ghl):
    app = bridge()
    ghl.fail_next(1, 401)
    post(app, report())
    assert "delivered=0" in run(app, "retry", "--now").stdout  # the dead stay dead
    result = run(app, "retry", "--dead")
    assert result.exit_code == 0 and "Retried: delivered=1" in result.stdout
    assert len(ghl.notes) == 1


def test_retry_and_outbox_exit_1_when_the_store_does_not_answer(bridge):
    app = bridge(REDIS_URL=closed_port_url())
    for args in (["retry"], ["outbox"], ["replay", "call-9"]):
        result = run(app, *args)
        assert result.exit_code == 1
        assert "the store is unreachable" in result.output and "-> check REDIS_URL" in result.output


# worker
def test_worker_once_drains_what_is_due(bridge, ghl, caplog):
    caplog.set_level(logging.INFO)
    app = bridge(RETRY_BASE_DELAY_SECONDS="0.01")
    park_note(app, ghl)
    time.sleep(0.05)  # past the (tiny) backoff
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    result = run(app, "worker", "--once")
    assert result.exit_code == 0
    assert len(ghl.notes) == 1
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    assert "[OUTBOX] Worker stopping" in caplog.text


def test_worker_survives_a_store_outage(bridge, caplog):
    result = run(bridge(REDIS_URL=closed_port_url()), "worker", "--once")
    assert result.exit_code == 0
    assert "[OUTBOX] Store unavailable, trying again next pass" in caplog.text
    assert "[OUTBOX] Worker stopping" in caplog.text


# As real processes: the command line an operator (or the Procfile) runs
@pytest.fixture
def redis_bridge(bridge, redis_url, prefix, integrations_env):
    env = {**integrations_env, "REDIS_URL": redis_url, "STATE_STORAGE_PREFIX": prefix}

    def make(**more):
        return bridge(**env, **more), {**os.environ, **env, **more}

    return make


def flask_cli(env, *args, **kwargs):
    return [sys.executable, "-m", "flask", "--app", "wsgi", "vapi-bridge", *args], dict(
        cwd=ROOT, env=env, **kwargs)


def test_outbox_json_and_retry_now_as_processes(redis_bridge, ghl):
    app, env = redis_bridge()
    ghl.fail_next(4, 503)  # GoHighLevel down: the delivery and its three retries
    post(app, report())
    assert delivery(app)["note"]["status"] == "parked" and ghl.notes == []

    command, options = flask_cli(env, "outbox", "--json")
    listed = subprocess.run(command, **options, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    [job] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (job["call_id"], job["step"], job["attempts"]) == ("call-1", "note", 1)
    assert "HTTP 503" in job["last_error"] and job["due_at"] > time.time()
    assert "parked=1 dead=0 due=0" in listed.stderr

    command, options = flask_cli(env, "retry", "--now")
    retried = subprocess.run(command, **options, capture_output=True, text=True, timeout=60)
    assert retried.returncode == 0, retried.stderr
    assert "Retried: delivered=1, parked=0, dead=0" in retried.stdout
    [note] = ghl.notes  # GoHighLevel is back: the note lands, once
    assert note["contact_id"] == "ghl-contact-7" and "Call ID: call-1" in note["body"]
    assert delivery(app)["note"]["status"] == "ok"  # the process updated the shared store

    command, options = flask_cli(env, "outbox", "--json")
    after = subprocess.run(command, **options, capture_output=True, text=True, timeout=60)
    assert after.stdout == "" and "parked=0 dead=0 due=0" in after.stderr


def test_retry_process_exits_1_when_the_store_does_not_answer(redis_bridge):
    _, env = redis_bridge()
    command, options = flask_cli({**env, "REDIS_URL": closed_port_url()}, "retry")
    result = subprocess.run(command, **options, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "the store is unreachable" in result.stderr and "REDIS_URL" in result.stderr


def test_worker_process_drains_then_stops_cleanly_on_sigterm(redis_bridge, ghl, tmp_path):
    app, env = redis_bridge(RETRY_BASE_DELAY_SECONDS="0.01", WORKER_INTERVAL_SECONDS="0.2")
    park_note(app, ghl)
    log = tmp_path / "worker.log"
    command, options = flask_cli(env, "worker")
    with log.open("w") as out:
        worker = subprocess.Popen(command, **options, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 30
        while not ghl.notes and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.1)
        assert len(ghl.notes) == 1, log.read_text()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=10) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    text = log.read_text()
    assert "[OUTBOX] Delivered callId=call-1 step=note" in text
    assert text.rstrip().endswith("[OUTBOX] Worker stopping")
    assert delivery(app)["note"]["status"] == "ok"
