"""A burst of ended calls while GoHighLevel is down, then the outbox drained: one note each?

GoHighLevel is the local fake answering 503 to every request while the burst is posted
(each delivery attempt is 4 requests: the client's first and its 3 urllib3 retries, with
their real backoff); then it is up again and the outbox is drained until nothing is parked.
Webhooks arrive concurrently, as they would at gunicorn. Uses REDIS_URL if set, else a
private redis-server.

    .venv/bin/python -m bench.outbox_burst [CALLS]
"""

from __future__ import annotations

import copy
import json
import logging
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import redis

from tests.fakes.ghl import FakeGhl
from tests.redis_server import redis_url_or_private
from tests.vapi.payloads import EOCR_CURRENT
from vapi_bridge import create_app, pipeline
from vapi_bridge.context import current_context

REQUESTS_PER_ATTEMPT = 4
CONCURRENT_WEBHOOKS = 25
MAX_PASSES = 10


def report(n: int) -> str:
    payload = copy.deepcopy(EOCR_CURRENT)
    call = payload["message"]["call"]
    call["id"] = f"burst-{n}"
    call["assistantOverrides"]["variableValues"]["ghlContactId"] = f"contact-{n}"
    return json.dumps(payload)


def post(app, body: str) -> int:
    return app.test_client().post("/vapi/webhook", data=body, content_type="application/json",
                                  headers={"X-Vapi-Secret": "bench-token"}).status_code


def run(url: str, calls: int) -> dict[str, float | int]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fake's access log
    ghl = FakeGhl().start()
    prefix = f"benchburst{uuid.uuid4().hex[:6]}"
    app = create_app({"REDIS_URL": url, "STATE_STORAGE_PREFIX": prefix, "LOG_LEVEL": "ERROR",
                      "GHL_API_BASE_URL": ghl.url, "GHL_API_KEY": "pit-bench",
                      "GHL_LOCATION_ID": "loc-bench", "WEBHOOK_TOKEN": "bench-token"})
    try:
        ghl.fail_next(calls * REQUESTS_PER_ATTEMPT, 503)  # down for exactly the burst
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=CONCURRENT_WEBHOOKS) as pool:
            statuses = Counter(pool.map(lambda n: post(app, report(n)), range(calls)))
        burst_seconds = time.perf_counter() - started
        with app.app_context():
            ctx = current_context()
            figures = {"calls sent": calls, "answered 200": statuses[200],
                       "GoHighLevel requests while down": len(ghl.requests),
                       "notes while down": len(ghl.notes),
                       "jobs parked": pipeline.outbox(ctx).counts()["parked"]}
            drain_started, passes, delivered = time.perf_counter(), 0, 0
            while pipeline.outbox(ctx).counts()["parked"] and passes < MAX_PASSES:
                delivered += pipeline.drain_outbox(ctx, include_future=True).delivered
                passes += 1
            drain_seconds = time.perf_counter() - drain_started
            left = pipeline.outbox(ctx).counts()
        notes = Counter((note["contact_id"], note["body"].split("Call ID: ")[1].split("\n")[0])
                        for note in ghl.notes)
        expected = {(f"contact-{n}", f"burst-{n}") for n in range(calls)}
        return figures | {
            "drain passes": passes, "delivered by the drain": delivered,
            "notes after draining": len(ghl.notes),
            "duplicates": sum(count - 1 for count in notes.values()),
            "calls without a note": len(expected - set(notes)),
            "left parked / dead": f"{left['parked']} / {left['dead']}",
            "burst seconds (webhooks answered)": round(burst_seconds, 2),
            "drain seconds": round(drain_seconds, 2),
            "time taken (seconds)": round(burst_seconds + drain_seconds, 2),
        }
    finally:
        ghl.stop()
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)


def main(calls: int = 100) -> None:
    with redis_url_or_private() as url:
        figures = run(url, calls)
    print(f"Outbox burst: GoHighLevel down (503) for {calls} ended calls, then up; Redis store,"
          f" {CONCURRENT_WEBHOOKS} webhooks at a time")
    for name, value in figures.items():
        print(f"  {name:36} {value}")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:2]))
