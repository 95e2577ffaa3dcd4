"""What the metrics cost the webhook path: the server's CPU time per POST /vapi/webhook under
gunicorn on Redis, METRICS_TOKEN unset (nothing counted) against set (every request timed and
counted into the workers' files, a /metrics scrape before each run).

Both servers run at once with gunicorn.conf.py; the load (wrk, else the Python stand-in, a new
call id per request) goes to one at a time, in interleaved runs (off, on, on, off, ...) so drift
touches both alike. The figure is the CPU time the server's processes (master and workers, from
/proc) spent per request, on / off, taking each mode's least over the runs: other processes on the
machine only ever add to it (contention), so the least is the closest to the code's own cost.

    .venv/bin/python -m bench.metrics_cost [SECONDS_PER_RUN] [ROUNDS]
"""

from __future__ import annotations

import shutil
import signal
import sys
import uuid

import redis
import requests

from bench import ACTED_ON
from bench.throughput import cpu_seconds, python_load, workers_of, wrk
from bench.webhook_ack import serve
from tests.redis_server import redis_url_or_private

TOKEN = "bench-metrics-token-0123456789"
WORKERS = 2


def measure(redis_url: str, seconds: int = 3, rounds: int = 6) -> dict:
    load = wrk if shutil.which("wrk") else python_load
    prefix = f"benchmc{uuid.uuid4().hex[:6]}"
    base = {"REDIS_URL": redis_url, "STATE_STORAGE_PREFIX": prefix}
    # Two workers each: several processes (what the files are for), and room on a small box;
    # never recycled, or a worker's CPU time would leave with it.
    args = ("--workers", str(WORKERS), "--max-requests", "0")
    servers = {"off": serve(base, args), "on": serve({**base, "METRICS_TOKEN": TOKEN}, args)}
    runs: dict[tuple[str, str], list[float]] = {}
    try:
        for server, _ in servers.values():
            workers_of(server, WORKERS)
        for kind in ACTED_ON:
            for _, url in servers.values():
                load(url, kind, 1)  # warm up: imports, connections, pools
            for n in range(rounds):
                for mode in ("off", "on") if n % 2 == 0 else ("on", "off"):
                    server, url = servers[mode]
                    if mode == "on":
                        scrape = requests.get(f"{url}/metrics", timeout=10,
                                              headers={"Authorization": f"Bearer {TOKEN}"})
                        assert scrape.status_code == 200, scrape.text
                    before = cpu_seconds(server.pid)
                    result = load(url, kind, seconds)
                    assert result["non_2xx"] == result["socket_errors"] == 0, result
                    cpu = (cpu_seconds(server.pid) - before) / result["requests"] * 1e6
                    runs.setdefault((kind, mode), []).append(cpu)
    finally:
        for server, _ in servers.values():
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
    rows = []
    for kind in ACTED_ON:
        off, on = min(runs[kind, "off"]), min(runs[kind, "on"])
        rows.append({"body": kind, "cpu_us_off": off, "cpu_us_on": on, "cost": on / off - 1,
                     "runs_off": runs[kind, "off"], "runs_on": runs[kind, "on"]})
    return {"tool": "wrk" if load is wrk else "Python load generator", "seconds": seconds,
            "rounds": rounds, "workers": WORKERS, "rows": rows}


def print_rows(results: dict) -> None:
    print(f"{results['tool']}, {results['rounds']} interleaved runs of {results['seconds']} s "
          f"per mode and body, gunicorn with {results['workers']} workers on Redis; the "
          "server's CPU per request (least of the runs)")
    print(f"{'body':19} {'off µs':>7} {'on µs':>7} {'cost':>6}  runs off / on (µs)")
    for r in results["rows"]:
        spread = " ".join(f"{x:.0f}" for x in r["runs_off"]) + " / " + " ".join(
            f"{x:.0f}" for x in r["runs_on"])
        print(f"{r['body']:19} {r['cpu_us_off']:7.0f} {r['cpu_us_on']:7.0f} {r['cost']:6.1%}  "
              f"{spread}")


def print_in_process(rows: list[dict]) -> None:
    """bench.metrics_cpu's rows."""
    print(f"{'body':19} {'off µs':>7} {'on µs':>7} {'cost':>6}")
    for r in rows:
        print(f"{r['body']:19} {r['cpu_us_off']:7.0f} {r['cpu_us_on']:7.0f} {r['cost']:6.1%}")


if __name__ == "__main__":
    with redis_url_or_private() as url:
        print_rows(measure(url, *(int(arg) for arg in sys.argv[1:3])))
