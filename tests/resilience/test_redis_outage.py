"""Redis killed (SIGKILL) and started again while 150 reports stream in from 4 threads.

Every report is answered 200 within the pipeline deadline and delivered: the ones that
arrive while Redis is down with in-process claims (storage/fallback.py). A duplicate note
is tolerated only inside the outage window, from the kill until the app is back on Redis.
"""

from __future__ import annotations

import logging
import time

import pytest

from tests.resilience.stream import call_ids, drain_until_empty, notes_per_call, slack_per_call
from tests.resilience.stream import stream as run_stream
from vapi_bridge import create_app

REPORTS = 150
EVERY = 0.025  # seconds between reports: a 3.75 s stream
KILL_AT, RESTART_AT = 0.6, 1.2  # seconds into the stream
DEADLINE = 5.0


@pytest.fixture
def app(own_redis, integrations_env):
    return create_app({**integrations_env, "REDIS_URL": own_redis.url,
                       "PIPELINE_DEADLINE_SECONDS": str(DEADLINE),
                       "RETRY_BASE_DELAY_SECONDS": "0.01"})


def test_redis_killed_and_restarted_mid_stream(app, own_redis, ghl, slack, caplog):
    caplog.set_level(logging.INFO, logger="vapi_bridge")
    client = app.test_client()
    assert client.get("/health").status_code == 200
    events: dict[str, float] = {}
    health_during: list[dict] = []

    def on_cue(elapsed: float) -> None:
        if "kill" not in events and elapsed >= KILL_AT:
            own_redis.kill()
            events["kill"] = time.time()
        elif "kill" in events and not health_during and elapsed >= KILL_AT + 0.2:
            response = client.get("/health")
            health_during.append({"code": response.status_code, **response.get_json()})
        elif "restart" not in events and elapsed >= RESTART_AT:
            own_redis.start()
            events["restart"] = time.time()

    ids = call_ids(REPORTS, "outage")
    answers = run_stream(app, ids, threads=4, every=EVERY, timeout=DEADLINE + 30,
                         on_tick=on_cue)
    passes = drain_until_empty(app)

    # Answered, in time.
    assert [a.status for a in answers] == [200] * REPORTS
    slowest = max(a.seconds for a in answers)
    assert slowest < DEADLINE + 1

    # The outage, as the app saw it: a degraded line, /health, then back on Redis.
    degraded = [r for r in caplog.records if "degraded" in r.getMessage()]
    recovered = [r for r in caplog.records if "recovered" in r.getMessage()]
    assert len(degraded) == 1 and degraded[0].levelname == "WARNING"
    assert len(recovered) == 1, "the app never went back to Redis during the stream"
    assert events["kill"] <= degraded[0].created <= events["restart"] <= recovered[0].created
    [health] = health_during
    assert health["code"] == 503 and health["status"] == "degraded"
    assert health["storage"].items() >= {
        "available": False, "fallback": "memory", "degraded": True, "backend": "redis"}.items()
    after = client.get("/health")
    assert after.status_code == 200 and after.get_json()["storage"]["degraded"] is False
    back_on = recovered[0].created

    # Nothing lost; duplicates only inside the window.
    notes, posts = notes_per_call(ghl), slack_per_call(slack)
    assert set(notes) == set(ids) and set(posts) == set(ids)
    outside = [a.call_id for a in answers if a.ended < events["kill"] or a.started > back_on]
    inside = [a for a in answers if a.call_id not in set(outside)]
    assert all(notes[call_id] == 1 and posts[call_id] == 1 for call_id in outside)
    assert len(outside) >= REPORTS // 2  # the window did not swallow the stream
    during = [a.seconds for a in inside]
    print(f"\nredis outage: {REPORTS} reports, killed {events['restart'] - events['kill']:.2f} s,"
          f" degraded {back_on - degraded[0].created:.2f} s; {len(inside)} reports in the window,"
          f" max answer {max(during):.3f} s in it, {slowest:.3f} s overall;"
          f" notes {sum(notes.values())}, duplicate notes {sum(notes.values()) - len(notes)},"
          f" duplicate Slack posts {sum(posts.values()) - len(posts)}; drain passes {passes}")
