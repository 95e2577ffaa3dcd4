"""The outbox: parked deliveries retried later, never dropped, never delivered twice.

Unit behaviour runs on every backend; the end-to-end tests post webhooks to the real app
with GoHighLevel as a local fake server, then drain as the cron or the worker would.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import WEBHOOK_AUTH, WEBHOOK_TOKEN
from tests.vapi.payloads import EOCR_CURRENT
from vapi_bridge import create_app, pipeline
from vapi_bridge.context import current_context
from vapi_bridge.integrations.ghl import GhlRetry
from vapi_bridge.outbox import JOB_TTL, Job, Outbox, drain
from vapi_bridge.report import CallReport

REQUESTS_PER_ATTEMPT = 4  # the GoHighLevel client's first request and its 3 urllib3 retries


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def outbox(store, clock):
    return Outbox(store, max_attempts=4, base_delay=10.0, clock=clock)


def job(call_id="call-1", step="note", **fields) -> Job:
    return Job(call_id=call_id, step=step, client="default",
               report={"call_id": call_id, "ghl_tags": ["a"]}, contact_id="contact-1", **fields)


# Unit behaviour, every backend
def test_park_lists_the_job_until_it_is_due(outbox, clock):
    assert outbox.counts() == {"parked": 0, "dead": 0, "due": 0}
    parked = outbox.park(job(), "ghl: HTTP 503", retryable=True)
    assert (parked.attempts, parked.last_error, parked.parked_at) == (1, "ghl: HTTP 503", clock.now)
    assert 8 <= parked.due_at - clock.now <= 12
    assert outbox.counts() == {"parked": 1, "dead": 0, "due": 0}
    assert outbox.jobs() == [parked]
    assert outbox.jobs(due_only=True) == []
    clock.now = parked.due_at
    assert outbox.counts() == {"parked": 1, "dead": 0, "due": 1}
    [due] = outbox.jobs(due_only=True)
    assert due.report == {"call_id": "call-1", "ghl_tags": ["a"]}  # the report travels along
    assert due.summary() == {"call_id": "call-1", "step": "note", "client": "default",
                             "contact_id": "contact-1", "attempts": 1, "due_at": parked.due_at,
                             "last_error": "ghl: HTTP 503", "parked_at": parked.parked_at,
                             "dead_at": None}
    ttl = outbox.state.backend.ttl(outbox.state.key("outbox", "job", "call-1:note"))
    assert JOB_TTL - 10 <= ttl <= JOB_TTL


def test_backoff_grows_threefold_within_the_jitter(store, clock):
    outbox = Outbox(store, max_attempts=8, base_delay=60.0, clock=clock)
    parked = job()
    for attempt in range(1, 8):
        parked = outbox.park(parked, "down", retryable=True)
        expected = 60.0 * 3 ** (attempt - 1)
        assert parked.attempts == attempt
        assert expected * 0.8 <= parked.due_at - clock.now <= expected * 1.2, attempt
    delays = {round(outbox.delay(1), 3) for _ in range(50)}
    assert len(delays) > 1 and min(delays) >= 48 and max(delays) <= 72  # jittered


def test_dead_after_the_last_attempt(outbox, clock):
    parked = job()
    for _ in range(3):
        parked = outbox.park(parked, "down", retryable=True)
        assert parked.dead_at is None
    clock.now += 5
    dead = outbox.park(parked, "still down", retryable=True)
    assert (dead.attempts, dead.dead_at, dead.last_error) == (4, clock.now, "still down")
    assert outbox.counts() == {"parked": 0, "dead": 1, "due": 0}
    assert outbox.jobs() == []
    assert outbox.jobs(dead=True) == [dead]


def test_a_permanent_error_is_dead_at_once_with_its_reason(outbox, clock):
    reason = "ghl: HTTP 422 bad note"
    dead = outbox.park(job(), reason, retryable=False)
    assert (dead.attempts, dead.dead_at, dead.last_error) == (1, clock.now, reason)
    assert outbox.counts() == {"parked": 0, "dead": 1, "due": 0}


def test_revive_gives_a_dead_job_a_new_round(outbox, clock):
    dead = outbox.park(job(), "ghl: HTTP 401", retryable=False)
    clock.now += 100
    revived = outbox.revive(dead)
    assert (revived.attempts, revived.dead_at, revived.due_at) == (0, None, clock.now)
    assert revived.last_error == "ghl: HTTP 401"  # why it died stays visible
    assert outbox.counts() == {"parked": 1, "dead": 0, "due": 1}
    assert outbox.jobs(due_only=True) == [revived]


def test_jobs_are_listed_soonest_first_and_the_dead_oldest_first(outbox, clock):
    outbox.park(job("call-late"), "x", retryable=True)
    clock.now -= 5  # parked earlier, so due earlier
    outbox.park(job("call-early"), "x", retryable=True)
    clock.now += 20
    outbox.park(job("call-dead-2"), "x", retryable=False)
    clock.now -= 10
    outbox.park(job("call-dead-1"), "x", retryable=False)
    assert [j.call_id for j in outbox.jobs()] == ["call-early", "call-late"]
    assert [j.call_id for j in outbox.jobs(limit=1)] == ["call-early"]
    assert [j.call_id for j in outbox.jobs(dead=True)] == ["call-dead-1", "call-dead-2"]


def test_a_job_whose_data_expired_is_forgotten(outbox):
    gone = outbox.park(job("call-gone"), "x", retryable=True)
    kept = outbox.park(job("call-kept"), "x", retryable=True)
    outbox.state.backend.delete(outbox.state.key("outbox", "job", gone.member))  # its TTL ran out
    assert outbox.jobs() == [kept]
    tried = []
    summary = drain(outbox, lambda j: (tried.append(j.call_id) or True, None, True),
                    include_future=True)
    assert (summary.vanished, summary.delivered) == (1, 1)
    assert tried == ["call-kept"]
    assert outbox.counts() == {"parked": 0, "dead": 0, "due": 0}
    assert outbox.state.backend.get(outbox.state.key("outbox", "job", kept.member)) is None


def test_drain_takes_only_what_is_due_and_reports_each_outcome(outbox, clock):
    for n in range(3):
        outbox.park(job(f"call-{n}"), "x", retryable=True)
    clock.now += 100
    outbox.park(job("call-later"), "x", retryable=True)
    answers = {"call-0": (True, None, True), "call-1": (False, "HTTP 503", True),
               "call-2": (False, "HTTP 404", False)}
    seen = []
    summary = drain(outbox, lambda j: answers[j.call_id],
                    progress=lambda j, outcome: seen.append((j.call_id, outcome)))
    assert (summary.delivered, summary.parked, summary.dead, summary.busy) == (1, 1, 1, 0)
    assert sorted(seen) == [("call-0", "delivered"), ("call-1", "parked"), ("call-2", "dead")]
    assert [j.call_id for j in outbox.jobs()] == ["call-later", "call-1"]
    [retried] = [j for j in outbox.jobs() if j.call_id == "call-1"]
    assert (retried.attempts, retried.last_error) == (2, "HTTP 503")
    assert str(summary) == "delivered=1, parked=1, dead=1, busy=0, vanished=0"


def test_drain_with_include_future_tries_each_job_once_even_when_it_is_parked_again(outbox):
    for n in range(5):
        outbox.park(job(f"call-{n}"), "x", retryable=True)
    tried = []
    summary = drain(outbox, lambda j: (tried.append(j.call_id) or False, "down", True),
                    include_future=True)
    assert summary.parked == 5 and len(tried) == 5
    assert {j.attempts for j in outbox.jobs()} == {2}


def test_drain_of_the_dead_revives_them(outbox):
    outbox.park(job("call-dead"), "HTTP 401", retryable=False)
    outbox.park(job("call-parked"), "HTTP 503", retryable=True)
    assert drain(outbox, lambda j: (True, None, True)).seen == 0  # nothing due, the dead stay
    tried = []
    summary = drain(outbox, lambda j: (tried.append(j.call_id) or True, None, True), dead=True)
    assert (summary.delivered, tried) == (1, ["call-dead"])  # the parked one waits its turn
    assert outbox.counts() == {"parked": 1, "dead": 0, "due": 0}


def test_a_leased_job_is_busy_for_other_drainers(make_store, outbox):
    from vapi_bridge.storage import StateStore

    outbox.park(job(), "x", retryable=True)
    ours = outbox.state
    theirs = make_store() if ours.backend.persistent else StateStore(ours.backend,
                                                                     prefix=ours.prefix)
    assert theirs.claim("outbox-lease", "call-1")
    assert drain(outbox, lambda j: (True, None, True), include_future=True).busy == 1
    assert outbox.counts()["parked"] == 1
    theirs.release("outbox-lease", "call-1")
    assert drain(outbox, lambda j: (True, None, True), include_future=True).delivered == 1


def test_concurrent_drainers_deliver_each_job_once(outbox):
    for n in range(20):
        outbox.park(job(f"call-{n}"), "x", retryable=True)
    delivered, lock = [], threading.Lock()

    def deliver(j):
        time.sleep(0.002)
        with lock:
            delivered.append(j.member)
        return True, None, True

    with ThreadPoolExecutor(max_workers=4) as pool:
        summaries = list(pool.map(lambda _: drain(outbox, deliver, include_future=True), range(4)))
    assert sorted(delivered) == sorted(f"call-{n}:note" for n in range(20))
    assert sum(s.delivered for s in summaries) == 20
    assert sum(s.parked + s.dead for s in summaries) == 0
    assert outbox.counts() == {"parked": 0, "dead": 0, "due": 0}


def test_concurrent_drainers_try_a_failing_job_once_per_pass(outbox, clock):
    for n in range(20):
        outbox.park(job(f"call-{n}"), "x", retryable=True)
    clock.now += 100
    tried, lock = [], threading.Lock()

    def deliver(j):
        time.sleep(0.002)
        with lock:
            tried.append(j.member)
        return False, "still down", True

    start = threading.Barrier(4)

    def one_pass(_):
        start.wait()
        return drain(outbox, deliver)

    with ThreadPoolExecutor(max_workers=4) as pool:
        summaries = list(pool.map(one_pass, range(4)))
    assert sorted(tried) == sorted(f"call-{n}:note" for n in range(20))  # none twice
    assert {j.attempts for j in outbox.jobs()} == {2}
    assert sum(s.parked for s in summaries) == 20


def test_call_report_round_trips_through_json():
    report = CallReport.from_message(EOCR_CURRENT["message"])
    report = dataclasses.replace(report, ghl_tags=("vapi-lead", "café"),
                                 ghl_contact={"phone": "+14155550123", "firstName": "Ana"})
    again = CallReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report
    assert again.ended_at.tzinfo is not None and again.ended_at == report.ended_at
    assert again.ghl_tags == ("vapi-lead", "café")
    bare = CallReport(call_id="call-bare")
    assert CallReport.from_dict(json.loads(json.dumps(bare.to_dict()))) == bare


# End to end: the app, GoHighLevel as a local fake server, drains as the cron would run them
def report(call_id="call-1", contact_id="ghl-contact-7"):
    payload = copy.deepcopy(EOCR_CURRENT)
    payload["message"]["call"]["id"] = call_id
    payload["message"]["call"]["assistantOverrides"]["variableValues"]["ghlContactId"] = contact_id
    return payload


def post(app, payload):
    response = app.test_client().post("/vapi/webhook", data=json.dumps(payload),
                                      content_type="application/json", headers=WEBHOOK_AUTH)
    assert response.status_code == 200
    return response


def delivery(app, call_id="call-1"):
    return app.extensions["state_storage"].get_metadata(call_id)["delivery"]


def drain_app(app, **options):
    with app.app_context():
        return pipeline.drain_outbox(current_context(), **options)


def counts(app):
    with app.app_context():
        return pipeline.outbox(current_context()).counts()


@pytest.fixture
def no_ghl_backoff(monkeypatch):
    """urllib3's sleeps between the GoHighLevel client's retries (0 s, 1 s, 2 s) cut to
    nothing: the same requests are made, a failed attempt just costs no 3 s."""
    monkeypatch.setattr(GhlRetry, "get_backoff_time", lambda self: 0.0)


@pytest.fixture
def bridge(ghl, backend_env, prefix, no_ghl_backoff):
    """An app delivering notes to the GoHighLevel fake only (no tags for the call, no Slack)."""
    def make(**env):
        return create_app({**backend_env, "STATE_STORAGE_PREFIX": prefix,
                           "GHL_API_BASE_URL": ghl.url, "GHL_API_KEY": "pit-default",
                           "GHL_LOCATION_ID": "loc-default", "HTTP_TIMEOUT_SECONDS": "5",
                           "WEBHOOK_TOKEN": WEBHOOK_TOKEN, **env})

    return make


def test_ghl_down_for_two_attempts_then_one_note(bridge, ghl):
    ghl.fail_next(2 * REQUESTS_PER_ATTEMPT, 503)
    app = bridge()
    post(app, report())
    assert ghl.notes == [] and len(ghl.requests) == REQUESTS_PER_ATTEMPT
    note = delivery(app)["note"]
    assert (note["status"], note["attempts"]) == ("parked", 1)
    assert "HTTP 503" in note["last_error"] and note["due_at"] > time.time() + 30
    assert delivery(app)["slack"]["status"] == "skipped"
    assert drain_app(app).seen == 0  # not due for a minute

    summary = drain_app(app, include_future=True)
    assert (summary.parked, ghl.notes) == (1, [])
    assert delivery(app)["note"]["attempts"] == 2

    summary = drain_app(app, include_future=True)
    assert summary.delivered == 1
    [delivered] = ghl.notes
    assert delivered["contact_id"] == "ghl-contact-7" and "Call ID: call-1" in delivered["body"]
    assert len(ghl.requests) == 2 * REQUESTS_PER_ATTEMPT + 1
    assert delivery(app)["note"] == {"status": "ok", "attempts": 3, "last_error": None}
    assert counts(app) == {"parked": 0, "dead": 0, "due": 0}

    assert drain_app(app, include_future=True, dead=True).seen == 0
    post(app, report())  # Vapi sending the report again changes nothing either
    assert len(ghl.notes) == 1 and len(ghl.requests) == 2 * REQUESTS_PER_ATTEMPT + 1


def test_a_report_sent_again_while_parked_keeps_counting_attempts(bridge, ghl):
    ghl.fail_next(2 * REQUESTS_PER_ATTEMPT, 503)
    app = bridge()
    post(app, report())
    post(app, report())  # Vapi retried the webhook while GoHighLevel was still down
    note = delivery(app)["note"]
    assert (note["status"], note["attempts"]) == ("parked", 2)
    assert counts(app)["parked"] == 1
    assert drain_app(app, include_future=True).delivered == 1
    assert len(ghl.notes) == 1


def wait_until_due(app, count=1):
    deadline = time.monotonic() + 10
    while counts(app)["due"] < count:
        assert time.monotonic() < deadline, "no job came due"
        time.sleep(0.02)


def test_settings_set_the_schedule_and_the_last_attempt(bridge, ghl):
    ghl.fail_next(3 * REQUESTS_PER_ATTEMPT, 503)
    app = bridge(RETRY_MAX_ATTEMPTS="3", RETRY_BASE_DELAY_SECONDS="0.1")
    post(app, report())
    assert delivery(app)["note"]["due_at"] < time.time() + 1
    wait_until_due(app)
    assert drain_app(app).parked == 1  # due on its own, no include_future
    wait_until_due(app)
    assert drain_app(app).dead == 1
    note = delivery(app)["note"]
    assert (note["status"], note["attempts"]) == ("dead", 3) and "HTTP 503" in note["last_error"]
    assert counts(app) == {"parked": 0, "dead": 1, "due": 0}
    assert ghl.notes == [] and len(ghl.requests) == 3 * REQUESTS_PER_ATTEMPT


def test_a_422_goes_to_the_dead_letters_with_its_reason(bridge, ghl):
    ghl.fail_next(1, 422)
    app = bridge()
    post(app, report())
    assert len(ghl.requests) == 1  # never retried by the client either
    note = delivery(app)["note"]
    assert (note["status"], note["retryable"]) == ("dead", False)
    assert note["last_error"] == "ghl: HTTP 422 scripted failure"
    assert counts(app) == {"parked": 0, "dead": 1, "due": 0}
    with app.app_context():
        [dead] = pipeline.outbox(current_context()).jobs(dead=True)
    assert (dead.call_id, dead.step, dead.contact_id) == ("call-1", "note", "ghl-contact-7")
    assert dead.last_error == "ghl: HTTP 422 scripted failure"

    assert drain_app(app, include_future=True).seen == 0  # the dead wait for a person
    assert ghl.notes == []
    assert drain_app(app, dead=True).delivered == 1  # revived once the cause is fixed
    assert len(ghl.notes) == 1
    assert delivery(app)["note"]["status"] == "ok"


def test_the_contact_is_looked_up_again_when_the_lookup_failed(bridge, ghl):
    ghl.fail_next(REQUESTS_PER_ATTEMPT, 503)  # the phone lookup fails
    app = bridge()
    payload = report()
    del payload["message"]["call"]["assistantOverrides"]["variableValues"]["ghlContactId"]
    post(app, payload)
    assert delivery(app)["note"]["status"] == "parked"
    assert delivery(app)["tags"]["status"] == "parked"  # no contact, no tags step either
    existing = ghl.add_contact("+14155550123", "loc-default")
    assert drain_app(app, include_future=True).delivered == 2
    assert [n["contact_id"] for n in ghl.notes] == [existing]
    assert ghl.tags == []  # the call has no tags: done without a request
    assert {step["status"] for step in delivery(app).values()} == {"ok", "skipped"}


@pytest.mark.parametrize("backend_env", ["redis", "kv-rest"], indirect=True)
def test_concurrent_drainers_in_two_apps_never_double_deliver(bridge, ghl):
    ghl.fail_next(20 * REQUESTS_PER_ATTEMPT, 503)
    first, second = bridge(), bridge()  # two instances sharing one store
    for n in range(20):
        post(first, report(f"call-{n}", f"contact-{n}"))
    assert ghl.notes == [] and counts(first)["parked"] == 20
    ghl.delay = 0.01  # GoHighLevel slow enough for the drainers to overlap
    start = threading.Barrier(4)

    def one_pass(app):
        start.wait()
        return drain_app(app, include_future=True)

    with ThreadPoolExecutor(max_workers=4) as pool:
        summaries = list(pool.map(one_pass, [first, second, first, second]))
    assert sorted(n["contact_id"] for n in ghl.notes) == sorted(f"contact-{n}" for n in range(20))
    assert sum(s.delivered for s in summaries) == 20
    assert sum(s.parked + s.dead + s.vanished for s in summaries) == 0
    assert all(s.seen <= 20 for s in summaries)
    assert counts(second) == {"parked": 0, "dead": 0, "due": 0}
    assert {delivery(first, f"call-{n}")["note"]["status"] for n in range(20)} == {"ok"}
    assert drain_app(second, include_future=True).seen == 0
    assert len(ghl.notes) == 20


@pytest.mark.parametrize("backend_env", ["redis"], indirect=True)
def test_a_step_still_running_at_the_deadline_is_delivered_once(bridge, ghl):
    ghl.delay = 1.5
    app = bridge(PIPELINE_DEADLINE_SECONDS="0.5")
    post(app, report())
    note = delivery(app)["note"]
    assert (note["status"], note["last_error"]) == ("parked",
                                                    "still running at the pipeline deadline")
    # The slow request still holds the step's claim: a drain now must not post a twin.
    assert drain_app(app, include_future=True).parked == 1
    assert delivery(app)["note"]["last_error"] == "another delivery holds the claim"
    store = app.extensions["state_storage"]
    deadline = time.monotonic() + 10
    while not store.is_done("note", "call-1", "ghl-contact-7"):
        assert time.monotonic() < deadline, "the slow delivery never finished"
        time.sleep(0.05)
    assert drain_app(app, include_future=True).delivered == 1
    assert len(ghl.notes) == 1 and len(ghl.requests) == 1
    assert delivery(app)["note"]["status"] == "ok"
    assert counts(app) == {"parked": 0, "dead": 0, "due": 0}


@pytest.mark.parametrize("backend_env", ["redis"], indirect=True)
def test_a_burst_while_ghl_is_down_gives_exactly_one_note_per_call(bridge, ghl):
    calls = 100
    ghl.fail_next(calls * REQUESTS_PER_ATTEMPT, 503)
    app = bridge()
    for n in range(calls):
        post(app, report(f"burst-{n}", f"contact-{n}"))
    assert ghl.notes == []
    assert len(ghl.requests) == calls * REQUESTS_PER_ATTEMPT  # GoHighLevel is up again now
    assert counts(app)["parked"] == calls
    assert drain_app(app, include_future=True).delivered == calls
    assert drain_app(app, include_future=True).seen == 0
    bodies = [(n["contact_id"], n["body"].split("Call ID: ")[1].split("\n")[0])
              for n in ghl.notes]
    assert sorted(bodies) == sorted((f"contact-{n}", f"burst-{n}") for n in range(calls))
    assert counts(app) == {"parked": 0, "dead": 0, "due": 0}
