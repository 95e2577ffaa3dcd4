"""What one end-of-call-report costs with every integration configured (local fakes).

Counts, per report: Redis commands (INFO commandstats), store round trips (HTTP
requests to a local Upstash-protocol server in front of the same Redis: one request is
one round trip), and HTTP requests to GoHighLevel, Slack and the Vapi API. Three
contact sources: the id in the call's metadata, a phone lookup hit, a phone miss
(lookup + create).

    .venv/bin/python -m bench.delivery_cost
"""

from __future__ import annotations

import copy
import json
import logging
import uuid

import redis

from tests.fakes.ghl import FakeGhl
from tests.fakes.slack import FakeSlack
from tests.fakes.upstash_rest import UpstashRestFake
from tests.fakes.vapi_api import FakeVapi
from tests.redis_server import redis_url_or_private
from tests.vapi.payloads import EOCR_CURRENT
from vapi_bridge import create_app

PHONE = "+14155550123"


def commands(client: redis.Redis) -> int:
    """Commands served, less our INFO and the handshake of each new pooled connection."""
    stats = client.info("commandstats")
    handshake = ("cmdstat_info", "cmdstat_hello", "cmdstat_ping", "cmdstat_client|setinfo")
    return sum(v["calls"] for k, v in stats.items() if k not in handshake)


def report(call_id: str, with_contact: bool) -> str:
    payload = copy.deepcopy(EOCR_CURRENT)
    payload["message"]["call"]["id"] = call_id
    if not with_contact:
        del payload["message"]["call"]["assistantOverrides"]["variableValues"]["ghlContactId"]
    return json.dumps(payload)


def main() -> None:
    logging.disable(logging.WARNING)
    fakes = {"ghl": FakeGhl().start(), "slack": FakeSlack().start(), "vapi": FakeVapi().start()}
    outside = {"GHL_API_BASE_URL": fakes["ghl"].url, "SLACK_API_BASE_URL": fakes["slack"].api_url,
               "VAPI_API_BASE_URL": fakes["vapi"].url, "VAPI_API_KEY": fakes["vapi"].api_key,
               "GHL_API_KEY": "pit-bench", "GHL_LOCATION_ID": "loc-bench",
               "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_CHANNEL_ID": "C-bench"}
    with redis_url_or_private() as url:
        client = redis.Redis.from_url(url)
        rest = UpstashRestFake(url, "bench").start()
        prefix = f"benchcost{uuid.uuid4().hex[:6]}"
        stores = {"redis": {"REDIS_URL": url},
                  "kv-rest": {"KV_REST_API_URL": rest.url, "KV_REST_API_TOKEN": "bench"}}
        print(f"{'contact source':24} {'redis cmds':>10} {'round trips':>11} {'GHL':>4} "
              f"{'Slack':>5} {'Vapi':>4}")
        for case, with_contact, known in [("id in call metadata", True, False),
                                          ("phone lookup (found)", False, True),
                                          ("phone lookup + create", False, False)]:
            row = {}
            for store, env in stores.items():
                app = create_app({**outside, **env, "STATE_STORAGE_PREFIX": prefix + store})
                call_id = f"{store}-{uuid.uuid4().hex[:8]}"
                fakes["ghl"].contacts.clear()
                if known:
                    fakes["ghl"].add_contact(PHONE, "loc-bench")
                for fake in fakes.values():
                    fake.requests.clear()
                before, rest_before = commands(client), len(rest.server.log)
                answer = app.test_client().post("/vapi/webhook", data=report(call_id, with_contact),
                                                content_type="application/json")
                assert answer.status_code == 200, answer.get_data(as_text=True)
                row[store] = (commands(client) - before, len(rest.server.log) - rest_before,
                              *(len(fakes[name].requests) for name in ("ghl", "slack", "vapi")))
            redis_cmds = row["redis"][0]
            round_trips, ghl, slack, vapi = row["kv-rest"][1:]
            print(f"{case:24} {redis_cmds:>10} {round_trips:>11} {ghl:>4} {slack:>5} {vapi:>4}")
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
        rest.stop()
    for fake in fakes.values():
        fake.stop()


if __name__ == "__main__":
    main()
