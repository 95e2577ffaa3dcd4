"""Requests/s, server CPU per request and latency of POST /vapi/webhook.

Servers (same gunicorn config, gthread, same threads): the bare Flask app of
bench/baseline_app.py (the ceiling) with as many workers as the store it is compared
with, the app on the dict store (the config forces 1 worker), and the app on Redis (the
config's worker count; once more with the access log on, to show its cost); then the
baseline and the app on Redis under granian (WSGI, same workers, 8 threads each), for
what the server itself costs. Each is driven over loopback by wrk, whose Lua script gives
every request a new call id, with each body of ``bench.KINDS``. Without wrk, a Python load
generator (threads, keep-alive connections) stands in.

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

from bench import ACTED_ON, KINDS, message, redis_commands
from bench.webhook_ack import GUNICORN, serve
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


def processes(pid: int) -> list[int]:
    """``pid`` and its descendants (the server's master and workers)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            todo.extend(int(child) for child in task.read_text().split())
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the server's processes so far (/proc/<pid>/stat, every thread),
    recycled workers included: once reaped, theirs is in their parent's cutime and cstime."""
    total = 0
    for process in processes(pid):
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # gone between the listing and the read
            continue
        total += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


def workers_of(server: subprocess.Popen, expected: int) -> int:
    """The server's worker processes (the master's children), once ``expected`` are up or
    after 10 s."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
    for _ in range(100):
        if len(children.read_text().split()) >= expected:
            break
        time.sleep(0.1)
    time.sleep(0.5)  # let the last one finish importing the app
    return len(children.read_text().split())


GRANIAN = (str(Path(sys.executable).with_name("granian")),)
GRANIAN_ARGS = ("--interface", "wsgi", "--no-ws", "--host", "127.0.0.1", "--port", "{port}",
                "--blocking-threads", "8")


def groups(redis_url: str, prefix: str) -> list[tuple[list, tuple[str, ...]]]:
    """Servers measured together (interleaved), and the bodies they get. Each server: name,
    runner, environment, arguments, command, workers expected."""
    n = 2 * (os.cpu_count() or 1) + 1  # what gunicorn.conf.py gives a real store
    redis_env = {"REDIS_URL": redis_url, "STATE_STORAGE_PREFIX": prefix}
    gunicorn = (str(GUNICORN),)
    return [
        ([("baseline", "gunicorn", {}, ("--workers", "1", "bench.baseline_app:app"), gunicorn, 1),
          ("memory", "gunicorn", {"STATE_STORAGE": "memory"}, (), gunicorn, 1)], ACTED_ON),
        ([("baseline", "gunicorn", {}, ("--workers", str(n), "bench.baseline_app:app"), gunicorn,
           n),
          # The floor: bare Flask + a JSON parse + one Redis write (bench/floor_app.py).
          ("floor", "gunicorn", redis_env, ("--workers", str(n), "bench.floor_app:create()"),
           gunicorn, n),
          ("redis", "gunicorn", redis_env, (), gunicorn, n),
          ("redis+accesslog", "gunicorn", {**redis_env, "ACCESS_LOG": "true"}, (), gunicorn, n)],
         KINDS),
        # The server's own cost: the same two apps under granian (Rust HTTP, WSGI threads), on
        # one body we act on and one we ignore.
        ([("baseline", "granian", {}, (*GRANIAN_ARGS, "--workers", str(n),
                                       "bench.baseline_app:app"), GRANIAN, n),
          ("redis", "granian", redis_env, (*GRANIAN_ARGS, "--workers", str(n), "wsgi:app"),
           GRANIAN, n)], ("status-update", "conversation-update")),
    ]


def measure(redis_url: str, seconds: int) -> dict:
    """Every group of servers and body: the servers of a group take turns (A B B A, half the
    time each), so a change in the box's load hits them alike. Ratios to the baseline of the
    same group (same runner, same worker count)."""
    load = wrk if shutil.which("wrk") else python_load
    client = redis.Redis.from_url(redis_url)
    prefix = f"benchtp{uuid.uuid4().hex[:6]}"
    rows = []
    try:
        for servers, kinds in groups(redis_url, prefix):
            rows += _measure_group(servers, kinds, load, client, seconds)
    finally:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
    for row in rows:
        base = next(r for r in rows if r["server"] == "baseline" and r["body"] == row["body"]
                    and r["workers"] == row["workers"] and r["runner"] == row["runner"])
        row["rps_vs_baseline"] = row["rps"] / base["rps"]
        row["cpu_vs_baseline"] = row["cpu_ms"] / base["cpu_ms"]
        floor = next((r for r in rows if r["server"] == "floor" and r["body"] == row["body"]
                      and r["workers"] == row["workers"] and r["runner"] == row["runner"]), None)
        if floor is not None and row["body"] in ACTED_ON and row["server"] != "baseline":
            row["rps_vs_floor"] = row["rps"] / floor["rps"]
    tool = (f"wrk -t{WRK_THREADS} -c{CONNECTIONS}" if load is wrk else
            f"Python load generator, {CONNECTIONS} connections (wrk not installed)")
    return {"tool": tool, "connections": CONNECTIONS, "seconds": seconds, "rows": rows}


def _measure_group(servers: list, kinds: tuple[str, ...], load, client: redis.Redis,
                   seconds: int) -> list[dict]:
    started = []
    try:
        for name, runner, env, args, command, expected in servers:
            server, url = serve(env, args, command)
            started.append((name, runner, server, url, workers_of(server, expected)))
        rows = []
        for kind in kinds:
            totals = {name: {"requests": 0, "seconds": 0.0, "cpu": 0.0, "commands": 0,
                             "p50": [], "p99": [], "errors": 0} for name, *_ in started}
            for _name, _runner, _server, url, _workers in started:
                load(url, kind, 1)  # warm up: imports, connections, pools
            order = started + started[::-1]
            for name, _runner, server, url, _workers in order:
                cpu, commands = cpu_seconds(server.pid), redis_commands(client)
                result = load(url, kind, max(1, seconds // 2))
                total = totals[name]
                total["cpu"] += cpu_seconds(server.pid) - cpu
                total["commands"] += redis_commands(client) - commands
                total["requests"] += result["requests"]
                total["seconds"] += result["seconds"]
                total["p50"].append(result["p50_ms"])
                total["p99"].append(result["p99_ms"])
                total["errors"] += result["non_2xx"] + result["socket_errors"]
            for name, runner, _server, _url, workers in started:
                total = totals[name]
                row = {"server": name, "runner": runner, "workers": workers,
                       "threads": 8, "body": kind, "requests": total["requests"],
                       "rps": total["requests"] / total["seconds"],
                       "cpu_ms": total["cpu"] / total["requests"] * 1000,
                       "p50_ms": statistics.mean(total["p50"]),
                       "p99_ms": statistics.mean(total["p99"]), "errors": total["errors"]}
                if name != "baseline":  # cross-check of the store cost, under load
                    row["redis_commands_per_request"] = total["commands"] / total["requests"]
                rows.append(row)
        return rows
    finally:
        for _name, _runner, server, _url, _workers in started:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)


def print_table(results: dict) -> None:
    print(f"{results['tool']}, {results['seconds']} s per case (two turns, interleaved with the"
          " baseline) -> gthread (8 threads) or granian on loopback, a new call id per request;"
          " CPU: the server's processes, from /proc")
    print(f"{'server':15} {'runner':8} {'workers':>7} {'body':19} {'req/s':>7} {'CPU ms/req':>10} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'req/s vs':>8} {'CPU vs':>6} {'errors':>6} "
          f"{'Redis/req':>9} {'vs floor':>8}")
    for r in results["rows"]:
        commands, vs_floor = r.get("redis_commands_per_request"), r.get("rps_vs_floor")
        print(f"{r['server']:15} {r['runner']:8} {r['workers']:>7} {r['body']:19} "
              f"{r['rps']:7.0f} {r['cpu_ms']:10.2f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} "
              f"{r['rps_vs_baseline']:8.2f} {r['cpu_vs_baseline']:6.2f} {r['errors']:>6} "
              f"{'' if commands is None else f'{commands:.2f}':>9} "
              f"{'' if vs_floor is None else f'{vs_floor:.2f}':>8}")


if __name__ == "__main__":
    with redis_url_or_private() as redis_url:
        print_table(measure(redis_url, int(sys.argv[1]) if len(sys.argv) > 1 else 10))
