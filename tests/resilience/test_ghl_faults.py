"""GoHighLevel misbehaving: 30% of requests answered 429/500, or every answer 30 s late.

The fakes are ``FakeGhl`` with one override of ``Fake._handle`` each (tests/fakes untouched).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest

from tests.fakes.ghl import FakeGhl
from tests.fakes.http import json_response
from tests.resilience.stream import (
    call_ids,
    drain_until_empty,
    notes_per_call,
    post_report,
    slack_per_call,
)
from tests.resilience.stream import stream as run_stream
from vapi_bridge import create_app


class FlakyGhl(FakeGhl):
    """Answers 429 or 500 to a seeded-random share of requests, before any state changes."""

    def __init__(self, rate: float, seed: int):
        super().__init__()
        self.rate, self.random = rate, random.Random(seed)
        self.failures: Counter = Counter()

    def _handle(self, request, handler):
        with self.lock:
            status = self.random.choice((429, 500)) if self.random.random() < self.rate else None
            if status:
                self.failures[status] += 1
                self.requests.append(request)
        if status:
            return json_response({"statusCode": status, "message": "random failure"}, status)
        return super()._handle(request, handler)


class SlowGhl(FakeGhl):
    """Answers after ``seconds``, or as soon as ``release`` is set (so teardown never waits)."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.release = threading.Event()

    def _handle(self, request, handler):
        self.release.wait(self.seconds)
        return super()._handle(request, handler)


def _running(fake):
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def flaky_ghl():
    yield from _running(FlakyGhl(rate=0.3, seed=20260307))


@pytest.fixture
def slow_ghl():
    fake = SlowGhl(seconds=30)
    try:
        yield from _running(fake)
    finally:
        fake.release.set()


def test_ghl_failing_30_percent_still_gets_exactly_one_note_per_report(
        flaky_ghl, integrations_env, redis_url, prefix, slack):
    app = create_app({**integrations_env, "GHL_API_BASE_URL": flaky_ghl.url,
                      "REDIS_URL": redis_url, "STATE_STORAGE_PREFIX": prefix,
                      "RETRY_BASE_DELAY_SECONDS": "0.001", "RETRY_MAX_ATTEMPTS": "20"})
    ids = call_ids(200, "flaky")
    answers = run_stream(app, ids, threads=8)
    assert [a.status for a in answers] == [200] * len(ids)
    parked = sum(1 for call_id in ids if _note_status(app, call_id) == "parked")
    passes = drain_until_empty(app)

    notes = notes_per_call(flaky_ghl)
    assert notes == Counter(dict.fromkeys(ids, 1))  # exactly 200, none twice
    assert all(_note_status(app, call_id) == "ok" for call_id in ids)
    assert slack_per_call(slack) == Counter(dict.fromkeys(ids, 1))
    assert sum(flaky_ghl.failures.values()) >= 0.2 * len(flaky_ghl.requests)  # it did fail
    print(f"\nflaky GoHighLevel: {len(flaky_ghl.requests)} requests,"
          f" failed {dict(flaky_ghl.failures)}; {parked} notes parked, drained in {passes}"
          f" passes; notes {sum(notes.values())} for {len(ids)} reports")


def test_slow_ghl_still_answers_within_the_deadline(slow_ghl, integrations_env, slack):
    deadline = 2.0
    app = create_app({**integrations_env, "GHL_API_BASE_URL": slow_ghl.url,
                      "PIPELINE_DEADLINE_SECONDS": str(deadline),
                      "RETRY_BASE_DELAY_SECONDS": "0.001"})
    ids = call_ids(6, "slow")
    answers = run_stream(app, ids, threads=6)
    assert [a.status for a in answers] == [200] * len(ids)
    slowest = max(a.seconds for a in answers)
    assert deadline <= slowest < deadline + 1  # waited for the deadline, not for GoHighLevel
    for call_id in ids:
        note = _delivery(app, call_id)["note"]
        assert note["status"] == "parked", note
        assert note["last_error"] == "still running at the pipeline deadline"
        assert _delivery(app, call_id)["slack"]["status"] == "ok"
    assert notes_per_call(slow_ghl) == Counter()

    # GoHighLevel answers at last: the late steps land, and the outbox adds no second note.
    slow_ghl.release.set()
    _wait_for(lambda: len(notes_per_call(slow_ghl)) == len(ids))
    drain_until_empty(app)
    assert notes_per_call(slow_ghl) == Counter(dict.fromkeys(ids, 1))
    print(f"\nslow GoHighLevel: {len(ids)} reports answered in at most {slowest:.2f} s"
          f" (deadline {deadline:.0f} s), notes parked then delivered once each")
    late = post_report(app, "slow-late")  # and the service is still answering quickly
    assert late.status == 200 and late.seconds < deadline


def _delivery(app, call_id):
    return app.extensions["state_storage"].get_metadata(call_id)["delivery"]


def _note_status(app, call_id):
    return _delivery(app, call_id)["note"]["status"]


def _wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
