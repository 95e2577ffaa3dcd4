"""How long each CRM tool keeps the caller waiting, with GoHighLevel answering in 300 ms.

The app in-process (its WSGI callable, as bench.delivery_cost), the Redis store, and the
GoHighLevel fakes of the tests (CRM and calendars on one local server) holding every answer
for ``DELAY`` seconds. Per tool: the time to the answer of a ``tool-calls`` message as the
first tool of a call, as the first of a call that carries its contact id
(``variableValues.ghlContactId``, as ``/ghl/outbound-call`` starts them), and as a later one
(``add_tag`` of the same call ran before): the median of ``REPEATS`` calls each, and the
GoHighLevel requests it made. One more row, "update_stage again": an ``update_stage`` after
an ``update_stage`` of the same call (its opportunity kept). Target: a later tool within one
GoHighLevel round trip + 50 ms.

    .venv/bin/python -m bench.tool_latency
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from bench import run_alone
from tests.fakes.ghl_calendar import FakeGhlCalendar
from tests.fakes.ghl_crm import FakeGhlCrm
from vapi_bridge import create_app

DELAY = 0.3  # seconds GoHighLevel takes to answer each request
REPEATS = 5
TARGET_MS = DELAY * 1000 + 50
CALLER = "+14155550123"
LOCATION = "loc-bench"
TOKEN = "bench-webhook-token"


class BenchGhl(FakeGhlCrm, FakeGhlCalendar):
    """Every endpoint the tools use on one server."""


def arguments(name: str, n: int) -> dict[str, Any]:
    """Arguments that make each call of ``name`` do its full work (a free slot, a new stage)."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    return {"lookup_contact": {}, "add_note": {"note": "Prefers mornings"},
            "add_tag": {"tag": "bench"}, "send_sms": {"body": "See you Tuesday"},
            "update_stage": {"pipelineId": "p1", "stageId": f"s{n}"},
            "book_appointment": {"startTime": (start + timedelta(hours=n)).isoformat()},
            "check_availability": {}}[name]


AGAIN = "update_stage again"  # the row of an update_stage after one of the same call
TOOLS = ("lookup_contact", "add_note", "add_tag", "send_sms", "update_stage",
         "book_appointment", "check_availability")


def measure(url: str) -> list[dict]:
    ghl = BenchGhl().start()
    prefix = f"benchtools{uuid.uuid4().hex[:6]}"
    app = create_app({"REDIS_URL": url, "STATE_STORAGE_PREFIX": prefix, "WEBHOOK_TOKEN": TOKEN,
                      "GHL_API_BASE_URL": ghl.url, "GHL_API_KEY": "pit-bench",
                      "GHL_LOCATION_ID": LOCATION, "GHL_CALENDAR_ID": "cal-bench",
                      "DEFAULT_TIMEZONE": "UTC"})
    client = app.test_client()
    contact = ghl.add_contact(CALLER, LOCATION, firstName="Ana", tags=["vip"])
    ghl.add_opportunity(contact, "p1", "s0", location_id=LOCATION)
    counter = iter(range(1_000_000))

    def tool(call_id: str, name: str, **call: Any) -> tuple[float, int]:
        """(ms to the answer, GoHighLevel requests) of one tool call (``call``: more fields of
        the message's call)."""
        n = next(counter)
        body = {"message": {"type": "tool-calls", "call": {
            "id": call_id, "assistantId": "a-bench", "customer": {"number": CALLER}, **call},
            "toolCallList": [{"id": f"t{n}", "type": "function", "function": {
                "name": name, "arguments": arguments(name, n)}}]}}
        before = len(ghl.requests)
        started = time.perf_counter()
        answer = client.post("/vapi/webhook", data=json.dumps(body),
                             content_type="application/json", headers={"X-Vapi-Secret": TOKEN})
        elapsed = (time.perf_counter() - started) * 1000
        [result] = answer.get_json()["results"]
        assert "result" in result, result
        return elapsed, len(ghl.requests) - before

    rows = []
    try:
        ghl.delay = DELAY
        for name in TOOLS:
            first, named, later = [], [], []
            for _ in range(REPEATS):
                first.append(tool(f"bench-{uuid.uuid4().hex[:12]}", name))
                named.append(tool(f"bench-{uuid.uuid4().hex[:12]}", name, assistantOverrides={
                    "variableValues": {"ghlContactId": contact}}))
                call_id = f"bench-{uuid.uuid4().hex[:12]}"
                tool(call_id, "add_tag")  # the call's first tool
                later.append(tool(call_id, name))
            rows.append({"tool": name,
                         "first_ms": round(statistics.median(t for t, _ in first)),
                         "first_named_ms": round(statistics.median(t for t, _ in named)),
                         "later_ms": round(statistics.median(t for t, _ in later)),
                         "first_ghl_requests": first[-1][1],
                         "first_named_ghl_requests": named[-1][1],
                         "later_ghl_requests": later[-1][1]})
        # update_stage after an update_stage of the same call: the opportunity is kept.
        again = []
        for _ in range(REPEATS):
            call_id = f"bench-{uuid.uuid4().hex[:12]}"
            tool(call_id, "update_stage")
            again.append(tool(call_id, "update_stage"))
        rows.append({"tool": AGAIN, "later_ms": round(statistics.median(t for t, _ in again)),
                     "later_ghl_requests": again[-1][1]})
    finally:
        ghl.stop()
        store = redis.Redis.from_url(url)
        for key in store.scan_iter(match=f"{prefix}*", count=1000):
            store.delete(key)
    return rows


def print_rows(rows: list[dict]) -> None:
    print(f"{'tool':20} {'first ms':>9} {'GHL reqs':>8} {'first, id in call':>18} {'GHL reqs':>8} "
          f"{'later ms':>9} {'GHL reqs':>8} {'later <= ' + str(round(TARGET_MS)) + ' ms':>16}")
    for r in rows:
        print(f"{r['tool']:20} {r.get('first_ms', '-'):>9} {r.get('first_ghl_requests', '-'):>8} "
              f"{r.get('first_named_ms', '-'):>18} {r.get('first_named_ghl_requests', '-'):>8} "
              f"{r['later_ms']:>9} {r['later_ghl_requests']:>8} "
              f"{'yes' if r['later_ms'] <= TARGET_MS else 'no':>16}")


if __name__ == "__main__":
    run_alone(measure, print_rows)
