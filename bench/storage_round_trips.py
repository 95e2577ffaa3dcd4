"""Count what each state operation costs every backend, and time it.

Redis: commands from the server's own ``INFO commandstats``. REST: HTTP requests
seen by a local server speaking the Upstash protocol in front of the same Redis.
Uses REDIS_URL if set, else starts a private redis-server.

    .venv/bin/python -m bench.storage_round_trips [N]
"""

from __future__ import annotations

import sys
import time
import uuid

import redis

from tests.fakes.upstash_rest import UpstashRestFake
from tests.redis_server import redis_url_or_private
from vapi_bridge.config import settings_from_mapping
from vapi_bridge.storage import StateStore, create_backend


def commandstats(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")


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
            "redis": ({"REDIS_URL": url}, lambda: commandstats(client)),
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


if __name__ == "__main__":
    import logging

    logging.disable(logging.INFO)
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
