"""Requests/s and latency of POST /vapi/webhook under gunicorn with gunicorn.conf.py.

Servers (same gunicorn config, gthread, same threads): the bare Flask app of
bench/baseline_app.py (the ceiling) with as many workers as the store it is compared
with, the app on the dict store (the config forces 1 worker), and the app on Redis (the
config's worker count). Each is driven over loopback by wrk, whose Lua script gives every
request a new call id, with an end-of-call-report body and with a status-update body.
Without wrk, a Python load generator (threads, keep-alive connections) stands in.

    .venv/bin/python -m bench.throughput [SECONDS]
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import redis

from bench import KINDS, message, redis_commands
from bench.webhook_ack import serve
from tests.redis_server import redis_url_or_private

CONNECTIONS, WRK_THREADS = 16, 2
PLACEHOLDER = "__CALL_ID__"

# Every request gets its own call id: <run>-<wrk thread>-<counter>.
LUA = """
local prefix, suffix, run = [==[%s]==], [==[%s]==], "%s"
local counter, threads = 0, 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function request()
  counter = counter + 1
  return wrk.format("POST", "/vapi/webhook", {["Content-Type"] = "application/json"},
                    prefix .. run .. "-" .. tid .. "-" .. counter .. suffix)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "seconds": %%f, "non_2xx": %%d, "socket_errors": %%d, ' ..
    '"p50_ms": %%f, "p99_ms": %%f}\\n', summary.requests, summary.duration / 1e6, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000))
end
"""


def wrk(url: str, kind: str, seconds: int) -> dict:
    """One wrk run; requests/s, p50/p99 in ms, failures."""
    prefix, suffix = message(kind, PLACEHOLDER).split(PLACEHOLDER)
    run = f"{kind[:6]}{uuid.uuid4().hex[:6]}"
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(LUA % (prefix, suffix, run))
        script.flush()
        out = subprocess.run(["wrk", f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s",
                              "-s", script.name, url + "/vapi/webhook"],
                             capture_output=True, text=True, check=True).stdout
    result = json.loads(out.split("RESULT ", 1)[1])
    result["rps"] = result["requests"] / result["seconds"]
    return result


def python_load(url: str, kind: str, seconds: int) -> dict:
    """The stand-in for wrk: CONNECTIONS threads, one keep-alive connection each."""
    parts = urlsplit(url)
    run, latencies, failures = uuid.uuid4().hex[:6], [], [0]
    deadline = time.monotonic() + seconds

    def client(n: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port)
        i = 0
        while time.monotonic() < deadline:
            i += 1
            body = message(kind, f"{run}-{n}-{i}")
            started = time.perf_counter()
            conn.request("POST", "/vapi/webhook", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            latencies.append((time.perf_counter() - started) * 1000)
            failures[0] += response.status != 200

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CONNECTIONS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    q = statistics.quantiles(latencies, n=100)
    return {"requests": len(latencies), "seconds": elapsed, "rps": len(latencies) / elapsed,
            "non_2xx": failures[0], "socket_errors": 0, "p50_ms": q[49], "p99_ms": q[98]}


def workers_of(server: subprocess.Popen, expected: int) -> int:
    """gunicorn's worker processes (the master's children), once ``expected`` are up or
    after 10 s."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
    for _ in range(100):
        if len(children.read_text().split()) >= expected:
            break
        time.sleep(0.1)
    time.sleep(0.5)  # let the last one finish importing the app
    return len(children.read_text().split())


def measure(redis_url: str, seconds: int) -> dict:
    """Every server and body; ratios to the baseline with the same worker count."""
    load = wrk if shutil.which("wrk") else python_load
    redis_workers = 2 * (os.cpu_count() or 1) + 1  # what gunicorn.conf.py gives a real store
    client = redis.Redis.from_url(redis_url)
    prefix = f"benchtp{uuid.uuid4().hex[:6]}"
    servers = [  # name, environment, gunicorn arguments, workers expected
        ("baseline", {}, ("--workers", "1", "bench.baseline_app:app"), 1),
        ("memory", {"STATE_STORAGE": "memory"}, (), 1),
        ("baseline", {}, ("--workers", str(redis_workers), "bench.baseline_app:app"),
         redis_workers),
        ("redis", {"REDIS_URL": redis_url, "STATE_STORAGE_PREFIX": prefix}, (), redis_workers),
    ]
    rows = []
    try:
        for name, env, args, expected in servers:
            server, url = serve(env, args)
            try:
                workers = workers_of(server, expected)
                for kind in KINDS:
                    load(url, kind, 1)  # warm up: imports, connections, pools
                    before = redis_commands(client)
                    result = load(url, kind, seconds)
                    # threads: gunicorn.conf.py's default (GUNICORN_THREADS is not passed)
                    row = {"server": name, "workers": workers, "threads": 8, "body": kind,
                           **{k: result[k] for k in ("rps", "p50_ms", "p99_ms", "requests",
                                                     "non_2xx", "socket_errors")}}
                    if name == "redis":  # cross-check of the store cost, under load
                        row["redis_commands_per_request"] = (
                            (redis_commands(client) - before) / result["requests"])
                    rows.append(row)
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=30)
    finally:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
    for row in rows:
        base = next(r for r in rows if r["server"] == "baseline" and r["body"] == row["body"]
                    and r["workers"] == row["workers"])
        row["rps_vs_baseline"] = row["rps"] / base["rps"]
    tool = (f"wrk -t{WRK_THREADS} -c{CONNECTIONS}" if load is wrk else
            f"Python load generator, {CONNECTIONS} connections (wrk not installed)")
    return {"tool": tool, "connections": CONNECTIONS, "seconds": seconds, "rows": rows}


def print_table(results: dict) -> None:
    print(f"{results['tool']}, {results['seconds']} s per case -> gunicorn gthread on loopback, "
          "a new call id per request")
    print(f"{'server':9} {'workers x threads':>17} {'body':19} {'req/s':>8} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'vs baseline':>11} {'errors':>6} {'Redis cmds/req':>14}")
    for r in results["rows"]:
        commands = r.get("redis_commands_per_request")
        print(f"{r['server']:9} {r['workers']:>8} x {r['threads']:<6} {r['body']:19} "
              f"{r['rps']:8.0f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} "
              f"{r['rps_vs_baseline']:10.0%} {r['non_2xx'] + r['socket_errors']:>7} "
              f"{'' if commands is None else f'{commands:.2f}':>14}")


if __name__ == "__main__":
    with redis_url_or_private() as redis_url:
        print_table(measure(redis_url, int(sys.argv[1]) if len(sys.argv) > 1 else 10))
