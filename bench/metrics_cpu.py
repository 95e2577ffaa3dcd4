"""What the metrics cost per message, in one process: the WSGI callable called directly (as
bench.cpu_per_message does), METRICS_TOKEN unset against set, in interleaved blocks.

Steadier than the servers of bench.metrics_cost on a noisy box: no server, no load generator,
only this process's CPU time. ``PROMETHEUS_MULTIPROC_DIR`` is set before prometheus-client is
imported, so every count is written to a memory-mapped file as under gunicorn. Prints the rows as
JSON (bench.run_all runs it in its own process for that reason; metrics_cost prints them).

    .venv/bin/python -m bench.metrics_cpu [N]
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import tempfile
import uuid

import redis

from bench import ACTED_ON, KINDS
from bench.cpu_per_message import ROUNDS, block, requests_of
from tests.redis_server import redis_url_or_private

TOKEN = "bench-metrics-token-0123456789"


def app(redis_url: str, prefix: str, **extra: str):
    from vapi_bridge import create_app  # here: after PROMETHEUS_MULTIPROC_DIR is set
    stderr, sys.stderr = sys.stderr, open(os.devnull, "w")  # noqa: SIM115
    try:
        return create_app({"REDIS_URL": redis_url, "STATE_STORAGE_PREFIX": prefix,
                           "LOG_LEVEL": "INFO", "LOG_FORMAT": "json", **extra})
    finally:
        sys.stderr = stderr


def measure(redis_url: str, n: int = 300) -> list[dict]:
    prefix = f"benchmcpu{uuid.uuid4().hex[:6]}"
    apps = {"off": app(redis_url, prefix), "on": app(redis_url, prefix, METRICS_TOKEN=TOKEN)}
    rows = []
    try:
        for kind in [*ACTED_ON, *(k for k in KINDS if k not in ACTED_ON)]:
            environ = requests_of(kind)
            samples: dict[str, list[float]] = {name: [] for name in apps}
            for each in apps.values():  # warm up
                block(each, environ, 0, 50)
            for r in range(ROUNDS):
                order = list(apps.items()) if r % 2 == 0 else list(reversed(apps.items()))
                for name, each in order:
                    samples[name].append(block(each, environ, 1000 + r * n, n))
            off, on = (statistics.median(samples[name]) for name in apps)
            rows.append({"body": kind, "cpu_us_off": off, "cpu_us_on": on, "cost": on / off - 1})
    finally:
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
    return rows


if __name__ == "__main__":
    if "prometheus_client" in sys.modules:
        raise SystemExit("prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set")
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="bench-metrics-"))
    logging.disable(logging.NOTSET)
    with redis_url_or_private() as url:
        rows = measure(url, *(int(arg) for arg in sys.argv[1:2]))
    print(json.dumps(rows))
