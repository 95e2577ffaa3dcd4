"""What one end-of-call-report costs with every integration configured (local fakes).

Counts, per report: Redis commands (INFO commandstats), Redis round trips (requests
redis-py sends and waits on, counted in-process), REST round trips (HTTP requests to a
local Upstash-protocol server in front of the same Redis), and HTTP requests to
GoHighLevel, Slack and the Vapi API. Three contact sources: the id in the call's
metadata, a phone lookup hit, a phone miss (lookup + create).

    .venv/bin/python -m bench.delivery_cost
"""

from __future__ import annotations

import copy
import json
import uuid

import redis

from bench import counted_round_trips, redis_commands, run_alone
from tests.fakes.ghl import FakeGhl
from tests.fakes.slack import FakeSlack
from tests.fakes.upstash_rest import UpstashRestFake
from tests.fakes.vapi_api import FakeVapi
from tests.vapi.payloads import EOCR_CURRENT
from vapi_bridge import create_app
from vapi_bridge.storage.base import (
    DELETE_IF_EQUALS_LUA,
    INCR_LUA,
    OWNED_SET_MANY_LUA,
    SET_OR_GET_LUA,
)

PHONE = "+14155550123"
SCRIPTS = (DELETE_IF_EQUALS_LUA, INCR_LUA, OWNED_SET_MANY_LUA, SET_OR_GET_LUA)


def report(call_id: str, with_contact: bool) -> str:
    payload = copy.deepcopy(EOCR_CURRENT)
    payload["message"]["call"]["id"] = call_id
    if not with_contact:
        del payload["message"]["call"]["assistantOverrides"]["variableValues"]["ghlContactId"]
    return json.dumps(payload)


AUTH = {"X-Vapi-Secret": "bench-webhook-token"}  # integrations need a webhook secret
CASES = [("id in call metadata", True, False), ("phone lookup (found)", False, True),
         ("phone lookup + create", False, False)]


def measure(url: str) -> list[dict]:
    """One report per contact source and store; Redis commands, REST round trips, HTTP calls."""
    fakes = {"ghl": FakeGhl().start(), "slack": FakeSlack().start(), "vapi": FakeVapi().start()}
    outside = {"GHL_API_BASE_URL": fakes["ghl"].url, "SLACK_API_BASE_URL": fakes["slack"].api_url,
               "VAPI_API_BASE_URL": fakes["vapi"].url, "VAPI_API_KEY": fakes["vapi"].api_key,
               "GHL_API_KEY": "pit-bench", "GHL_LOCATION_ID": "loc-bench",
               "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_CHANNEL_ID": "C-bench",
               "WEBHOOK_TOKEN": "bench-webhook-token"}
    client = redis.Redis.from_url(url)
    for script in SCRIPTS:  # as on a Redis the app has used: not a first EVALSHA's NOSCRIPT
        client.script_load(script)
    rest = UpstashRestFake(url, "bench").start()
    prefix = f"benchcost{uuid.uuid4().hex[:6]}"
    stores = {"redis": {"REDIS_URL": url},
              "kv-rest": {"KV_REST_API_URL": rest.url, "KV_REST_API_TOKEN": "bench"}}
    rows = []
    try:
        for case, with_contact, known in CASES:
            row = {}
            for store, env in stores.items():
                app = create_app({**outside, **env, "STATE_STORAGE_PREFIX": prefix + store})
                call_id = f"{store}-{uuid.uuid4().hex[:8]}"
                fakes["ghl"].contacts.clear()
                if known:
                    fakes["ghl"].add_contact(PHONE, "loc-bench")
                for fake in fakes.values():
                    fake.requests.clear()
                before, rest_before = redis_commands(client), len(rest.server.log)
                with counted_round_trips() as trips:
                    answer = app.test_client().post("/vapi/webhook",
                                                    data=report(call_id, with_contact),
                                                    content_type="application/json",
                                                    headers=AUTH)
                assert answer.status_code == 200, answer.get_data(as_text=True)
                row[store] = (redis_commands(client) - before, trips[0],
                              len(rest.server.log) - rest_before,
                              *(len(fakes[name].requests) for name in ("ghl", "slack", "vapi")))
            ghl, slack, vapi = row["kv-rest"][3:]
            rows.append({"contact_source": case, "redis_commands": row["redis"][0],
                         "redis_round_trips": row["redis"][1],
                         "rest_round_trips": row["kv-rest"][2], "ghl": ghl, "slack": slack,
                         "vapi": vapi})
    finally:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
        rest.stop()
        for fake in fakes.values():
            fake.stop()
    return rows


def print_rows(rows: list[dict]) -> None:
    print(f"{'contact source':24} {'redis cmds':>10} {'redis RTs':>9} {'REST RTs':>8} "
          f"{'GHL':>4} {'Slack':>5} {'Vapi':>4}")
    for r in rows:
        print(f"{r['contact_source']:24} {r['redis_commands']:>10} {r['redis_round_trips']:>9} "
              f"{r['rest_round_trips']:>8} {r['ghl']:>4} {r['slack']:>5} {r['vapi']:>4}")


if __name__ == "__main__":
    run_alone(measure, print_rows)
