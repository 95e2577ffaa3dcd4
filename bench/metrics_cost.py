"""What the metrics cost the webhook path: CPU time per POST /vapi/webhook with METRICS_TOKEN
unset (nothing counted) against set (every request timed and counted), on Redis.

The app is called as gunicorn calls it (its WSGI callable, a prepared environ per request, a
new call id each) in a process of its own whose PROMETHEUS_MULTIPROC_DIR is set, so the counts
go to memory-mapped files as under gunicorn. Runs alternate (off, on, on, off, ...) so drift
touches both alike; the figure is the ratio of the medians. CPU time (``time.process_time``)
leaves out the waits on Redis and what other processes on the machine do to wall time: it is
the share of the work the metrics add, an upper bound of what they take from throughput.

    .venv/bin/python -m bench.metrics_cost
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import redis
from werkzeug.test import EnvironBuilder

from bench import KINDS, message
from tests.redis_server import redis_url_or_private

TOKEN = "bench-metrics-token-0123456789"
ROUNDS, REQUESTS = 10, 300


def measure(redis_url: str) -> dict:
    """Run the measurement in its own process (prometheus-client picks its multiprocess mode
    when first imported); its result."""
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as directory:
        out = subprocess.run([sys.executable, "-m", "bench.metrics_cost", redis_url],
                             env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": directory},
                             capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def _cpu_per_request(app, kind: str, run: str) -> float:
    """Microseconds of this process's CPU per request, over REQUESTS requests."""
    environs = [EnvironBuilder(path="/vapi/webhook", method="POST",
                               data=message(kind, f"{run}-{i}"),
                               content_type="application/json").get_environ()
                for i in range(REQUESTS)]
    statuses = []
    started = time.process_time()
    for environ in environs:
        b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    elapsed = time.process_time() - started
    assert set(statuses) == {"200 OK"}, set(statuses)
    return elapsed / REQUESTS * 1e6


def _child(redis_url: str) -> dict:
    import logging

    from vapi_bridge import create_app

    logging.disable(logging.WARNING)
    prefix = f"benchmc{uuid.uuid4().hex[:6]}"
    runs: dict[str, dict[str, list[float]]] = {kind: {"off": [], "on": []} for kind in KINDS}
    try:
        for kind in KINDS:
            for n in range(ROUNDS + 1):  # the first round warms up and is dropped
                for mode in ("off", "on") if n % 2 else ("on", "off"):
                    # The last app built says whether this process counts (metrics.init_app).
                    app = create_app({"REDIS_URL": redis_url, "STATE_STORAGE_PREFIX": prefix,
                                      "LOG_LEVEL": "WARNING",
                                      "METRICS_TOKEN": TOKEN if mode == "on" else None})
                    cpu = _cpu_per_request(app, kind, f"{mode}{n}-{uuid.uuid4().hex[:6]}")
                    if n:
                        runs[kind][mode].append(cpu)
    finally:
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
    rows = [{"body": kind, "cpu_us_off": statistics.median(runs[kind]["off"]),
             "cpu_us_on": statistics.median(runs[kind]["on"]), "runs": runs[kind]}
            for kind in KINDS]
    for row in rows:
        row["cost"] = row["cpu_us_on"] / row["cpu_us_off"] - 1
    return {"rounds": ROUNDS, "requests_per_run": REQUESTS, "rows": rows}


def print_rows(results: dict) -> None:
    print(f"{results['rounds']} interleaved runs of {results['requests_per_run']} requests per "
          "mode and body, the WSGI app on Redis, CPU time per request")
    print(f"{'body':19} {'off µs':>8} {'on µs':>8} {'cost':>6}")
    for r in results["rows"]:
        print(f"{r['body']:19} {r['cpu_us_off']:8.0f} {r['cpu_us_on']:8.0f} {r['cost']:6.1%}")


if __name__ == "__main__":
    if len(sys.argv) > 1:  # the measuring process (see measure)
        print(json.dumps(_child(sys.argv[1])))
    else:
        with redis_url_or_private() as url:
            print_rows(measure(url))
