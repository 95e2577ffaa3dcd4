"""Count what each state operation costs every backend, and time it.

Redis: commands from the server's own ``INFO commandstats``. REST: HTTP requests
seen by a local server speaking the Upstash protocol in front of the same Redis.
Uses REDIS_URL if set, else starts a private redis-server.

    .venv/bin/python -m bench.storage_round_trips [N]

``per_message`` does the same for whole webhooks through the app: the store cost of one
end-of-call-report and one status-update (no integrations configured).
"""

from __future__ import annotations

import sys
import time
import uuid

import redis
from flask.testing import FlaskClient

from bench import KINDS, counted_round_trips, message, redis_command_counts, redis_commands
from tests.fakes.upstash_rest import UpstashRestFake
from tests.redis_server import redis_url_or_private
from vapi_bridge import create_app
from vapi_bridge.config import settings_from_mapping
from vapi_bridge.storage import StateStore, create_backend


def measure(store: StateStore, count, n: int) -> dict[str, tuple[float, float]]:
    ops = {
        "store_call_summary": lambda i: store.store_call_summary(f"c{i}", "summary"),
        "get_call_summary": lambda i: store.get_call_summary(f"c{i}"),
        "claim_note (winner)": lambda i: store.claim_note(f"c{i}", "k"),
        "claim_note (loser)": lambda i: store.claim_note(f"c{i}", "k"),
        "release_note": lambda i: store.release_note(f"c{i}", "k"),
        "mark_note_sent": lambda i: store.mark_note_sent(f"c{i}", "k"),
    }
    store.backend.ping()
    results = {}
    for name, op in ops.items():
        before, started = count(), time.perf_counter()
        for i in range(n):
            op(i)
        elapsed = time.perf_counter() - started
        results[name] = ((count() - before) / n, elapsed / n * 1e6)
    return results


def main(n: int = 1000) -> None:
    with redis_url_or_private() as url:
        measure_all(url, n)


def measure_all(url: str, n: int) -> None:
    client = redis.Redis.from_url(url)
    fake = UpstashRestFake(url, "bench-token").start()
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    try:
        envs = {
            "memory": ({}, lambda: 0),
            "redis": ({"REDIS_URL": url}, lambda: redis_commands(client)),
            "kv-rest": ({"KV_REST_API_URL": fake.url, "KV_REST_API_TOKEN": "bench-token"},
                        lambda: len(fake.server.log)),
        }
        print(f"{n} operations each; cost = Redis commands (redis) or HTTP round trips (kv-rest)")
        print(f"{'operation':22} {'backend':8} {'cost/op':>8} {'us/op':>9}")
        for name, (env, count) in envs.items():
            settings = settings_from_mapping({**env, "STATE_STORAGE_PREFIX": prefix + name})
            store = StateStore(create_backend(settings), prefix=settings.storage_prefix)
            for op, (cost, micros) in measure(store, count, n).items():
                print(f"{op:22} {name:8} {cost:8.2f} {micros:9.1f}")
            fake.server.clear_log()
    finally:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
        fake.stop()


# Most storage commands and round trips one message may cost (issue 7).
TARGETS = {"end-of-call-report": (3, 2), "status-update": (2, 1)}


def per_message(url: str, n: int = 200) -> dict[str, dict]:
    """Store cost of a webhook of each kind, averaged over ``n`` distinct calls (after a warm-up).

    Redis backend: commands from INFO commandstats, round trips counted in-process
    (``counted_round_trips``). kv-rest backend: HTTP requests to the Upstash-protocol server
    (one request = one round trip) and the commands inside them.
    """
    client = redis.Redis.from_url(url)
    rest = UpstashRestFake(url, "bench-token").start()
    prefix = f"benchmsg{uuid.uuid4().hex[:8]}"
    apps = {"redis": create_app({"REDIS_URL": url, "STATE_STORAGE_PREFIX": prefix + "r"}),
            "kv-rest": create_app({"KV_REST_API_URL": rest.url, "KV_REST_API_TOKEN": "bench-token",
                                   "STATE_STORAGE_PREFIX": prefix + "k"})}
    results = {}
    try:
        for kind in KINDS:
            cost = {}
            for name, app in apps.items():
                http = app.test_client()
                for i in range(5):  # warm up: connections, scripts
                    _post(http, kind, f"{name}-warm-{i}")
                before, requests_before = redis_command_counts(client), len(rest.server.log)
                with counted_round_trips() as trips:
                    for i in range(n):
                        _post(http, kind, f"{name}-{i}")
                if name == "redis":
                    after = redis_command_counts(client)
                    cost["redis_by_command"] = {k: (v - before.get(k, 0)) / n
                                                for k, v in after.items() if v != before.get(k)}
                    cost["redis_commands"] = sum(cost["redis_by_command"].values())
                    cost["redis_round_trips"] = trips[0] / n
                else:
                    bodies = rest.commands()[requests_before:]
                    cost["rest_round_trips"] = len(bodies) / n
                    cost["rest_commands"] = sum(
                        len(b) if b and isinstance(b[0], list) else 1 for b in bodies) / n
            max_commands, max_trips = TARGETS[kind]
            cost["target"] = f"<= {max_commands} commands in <= {max_trips} round trips"
            cost["target_met"] = (cost["redis_commands"] <= max_commands
                                  and cost["redis_round_trips"] <= max_trips)
            results[kind] = cost
    finally:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
        rest.stop()
    return results


def _post(http: FlaskClient, kind: str, call_id: str) -> None:
    answer = http.post("/vapi/webhook", data=message(kind, call_id),
                       content_type="application/json")
    assert answer.status_code == 200, answer.get_data(as_text=True)


def print_per_message(results: dict[str, dict]) -> None:
    print(f"{'message':20} {'redis cmds':>10} {'redis RTs':>9} {'REST cmds':>9} {'REST RTs':>8}"
          "  target")
    for kind, c in results.items():
        print(f"{kind:20} {c['redis_commands']:10.2f} {c['redis_round_trips']:9.2f} "
              f"{c['rest_commands']:9.2f} {c['rest_round_trips']:8.2f}  {c['target']}: "
              f"{'met' if c['target_met'] else 'MISSED'}")
        by_command = ", ".join(f"{k} {v:g}" for k, v in c["redis_by_command"].items())
        print(f"{'':20} redis: {by_command}")


if __name__ == "__main__":
    import logging

    logging.disable(logging.INFO)
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
