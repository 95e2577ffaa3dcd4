"""A paced stream of end-of-call reports from several threads, timed per request."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from flask import Flask

from tests.conftest import WEBHOOK_AUTH
from tests.test_pipeline import report
from vapi_bridge import pipeline
from vapi_bridge.context import current_context

NOTE_CALL_ID = re.compile(r"^Call ID: (\S+)$", re.MULTILINE)
SLACK_CALL_ID = re.compile(r"Call ID: `([^`]+)`")


@dataclass(frozen=True)
class Answer:
    call_id: str
    status: int
    started: float  # time.time()
    seconds: float

    @property
    def ended(self) -> float:
        return self.started + self.seconds


def call_ids(count: int, tag: str) -> list[str]:
    return [f"{tag}-{n:04d}" for n in range(count)]


def post_report(app: Flask, call_id: str) -> Answer:
    """One report for a contact of its own, timed."""
    body = json.dumps(report(call_id=call_id, contact_id=f"contact-{call_id}"))
    started, clock = time.time(), time.perf_counter()
    response = app.test_client().post("/vapi/webhook", data=body,
                                      content_type="application/json", headers=WEBHOOK_AUTH)
    return Answer(call_id, response.status_code, started, time.perf_counter() - clock)


def stream(app: Flask, ids: list[str], *, threads: int = 4, every: float = 0.0,
           timeout: float = 60.0, on_tick: Callable[[float], None] | None = None) -> list[Answer]:
    """Post every report, the n-th no earlier than ``n * every`` seconds in; ``on_tick(elapsed)``
    runs on this thread meanwhile (to kill a store on cue)."""
    begin = time.perf_counter()

    def paced(index: int, call_id: str) -> Answer:
        time.sleep(max(0.0, begin + index * every - time.perf_counter()))
        return post_report(app, call_id)

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vapi") as pool:
        futures = [pool.submit(paced, n, call_id) for n, call_id in enumerate(ids)]
        while on_tick and not all(f.done() for f in futures):
            on_tick(time.perf_counter() - begin)
            time.sleep(0.01)
        # A request that hangs fails the test here instead of hanging it.
        return [future.result(timeout=timeout) for future in futures]


def notes_per_call(ghl) -> Counter:
    with ghl.lock:
        return Counter(match for note in ghl.notes for match in NOTE_CALL_ID.findall(note["body"]))


def slack_per_call(slack) -> Counter:
    with slack.lock:
        return Counter(match for message in slack.messages
                       for match in set(SLACK_CALL_ID.findall(json.dumps(message["blocks"]))))


def drain_until_empty(app: Flask, rounds: int = 30) -> int:
    """Drain the whole outbox (future jobs too) until nothing is parked; the passes it took."""
    with app.app_context():
        ctx = current_context()
        for passes in range(rounds):
            if not pipeline.outbox(ctx).counts()["parked"]:
                return passes
            pipeline.drain_outbox(ctx, include_future=True)
    raise AssertionError(f"still parked after {rounds} passes")

