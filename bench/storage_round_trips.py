"""Count what each state operation costs every backend, and time it.

Redis: commands from the server's own ``INFO commandstats``. REST: HTTP requests
seen by a local server speaking the Upstash protocol in front of the same Redis.
Uses REDIS_URL if set, else starts a private redis-server.

    .venv/bin/python -m bench.storage_round_trips [N]

``per_message`` does the same for whole webhooks through the app (printed after): the store
cost of one message of each kind (no integrations configured), against the targets.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections import Counter

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
        "record_call (owner)": lambda i: store.record_call(f"c{i}", summary="s", metadata={},
                                                           client="North"),
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
        print()
        print_per_message(per_message(url))


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


# Most storage commands and round trips one message may cost (issue 7; issue 12: +1 owner;
# issue 16: +5 in the same pipeline: the recent-calls log's EXPIRE, two hourly counters and
# their EXPIREs, for the status page's picture of the last 24 hours; issue 15: the chatter we
# ignore, none; and the end-of-call-report in one round trip: one EVALSHA whose script runs the
# owner's GET + SET and the 8 writes, which INFO commandstats counts too: 11 commands).
TARGETS = {"end-of-call-report": (11, 1), "status-update": (2, 1), "conversation-update": (0, 0),
           "speech-update": (0, 0)}


def per_message(url: str, n: int = 200) -> dict[str, dict]:
    """Store cost of a webhook of each kind over ``n`` distinct calls (after a warm-up):
    mean and worst per message, and the mean of each command.

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
    results: dict[str, dict] = {kind: {} for kind in KINDS}
    try:
        for kind in KINDS:
            for name, app in apps.items():
                http = app.test_client()
                for i in range(5):  # warm up: connections, scripts
                    _one(name, http, kind, f"{name}-warm-{i}", client, rest)
                costs = [_one(name, http, kind, f"{name}-{i}", client, rest) for i in range(n)]
                total = sum((by_command for by_command, _ in costs), Counter())
                commands = [sum(by_command.values()) for by_command, _ in costs]
                trips = [round_trips for _, round_trips in costs]
                results[kind][name] = {
                    "commands": sum(commands) / n, "commands_max": max(commands),
                    "round_trips": sum(trips) / n, "round_trips_max": max(trips),
                    "by_command": {k: v / n for k, v in sorted(total.items())}}
            max_commands, max_trips = TARGETS[kind]
            worst = results[kind]["redis"]
            results[kind]["target"] = f"<= {max_commands} commands in <= {max_trips} round trips"
            results[kind]["target_met"] = (worst["commands_max"] <= max_commands
                                           and worst["round_trips_max"] <= max_trips)
    finally:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
        rest.stop()
    return results


def _one(backend: str, http: FlaskClient, kind: str, call_id: str, client: redis.Redis,
         rest: UpstashRestFake) -> tuple[Counter, int]:
    """Store commands (by name) and round trips of one webhook."""
    if backend == "redis":
        before = redis_command_counts(client)
        with counted_round_trips() as trips:
            _post(http, kind, call_id)
        after = redis_command_counts(client)
        return Counter({k: v - before.get(k, 0) for k, v in after.items()}), trips[0]
    start = len(rest.server.log)
    _post(http, kind, call_id)
    bodies = rest.commands()[start:]
    commands = [c for body in bodies for c in (body if isinstance(body[0], list) else [body])]
    return Counter(str(c[0]).lower() for c in commands), len(bodies)


def _post(http: FlaskClient, kind: str, call_id: str) -> None:
    answer = http.post("/vapi/webhook", data=message(kind, call_id),
                       content_type="application/json")
    assert answer.status_code == 200, answer.get_data(as_text=True)


def print_per_message(results: dict[str, dict]) -> None:
    print(f"{'message':19} {'store':8} {'commands':>8} {'(worst)':>7} {'round trips':>11} "
          f"{'(worst)':>7}  commands, mean per message")
    for kind, cost in results.items():
        for name in ("redis", "kv-rest"):
            c = cost[name]
            by_command = ", ".join(f"{k} {v:g}" for k, v in c["by_command"].items() if v)
            print(f"{kind:19} {name:8} {c['commands']:8.2f} {c['commands_max']:>7} "
                  f"{c['round_trips']:11.2f} {c['round_trips_max']:>7}  {by_command}")
        print(f"{'':19} target {cost['target']} (worst Redis case): "
              f"{'met' if cost['target_met'] else 'MISSED'}")


if __name__ == "__main__":
    import logging

    logging.disable(logging.INFO)
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
