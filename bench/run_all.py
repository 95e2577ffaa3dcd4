"""`make bench`: every figure in one run, printed as tables and written to bench/results.json.

1. throughput, server CPU and latency under gunicorn and granian (bench.throughput), against a
   bare Flask ceiling, and CPU per message in one process (bench.cpu_per_message);
2. store commands and round trips per end-of-call-report and per status-update
   (bench.storage_round_trips.per_message), against the targets;
3. resident memory over 1,000,000 calls on the dict store (bench.memory, its own process);
4. outside HTTP requests per end-of-call-report, everything configured against local
   fakes (bench.delivery_cost);
5. what the metrics cost the webhook path, METRICS_TOKEN unset against set, under gunicorn
   (bench.metrics_cost) and in one process (bench.metrics_cpu, steadier);
6. each CRM tool's answer time with GoHighLevel answering in 300 ms, first and later tool
   of a call (bench.tool_latency).

Uses REDIS_URL if set, else a private redis-server. BENCH_SECONDS sets the wrk duration
per case (default 5), BENCH_CALLS the memory run's calls (default 1,000,000).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    cpu_per_message,
    delivery_cost,
    metrics_cost,
    storage_round_trips,
    throughput,
    tool_latency,
)
from tests.redis_server import redis_url_or_private

RESULTS = Path(__file__).with_name("results.json")


def sh(command: str) -> str:
    return subprocess.run(command, shell=True, capture_output=True, text=True).stdout.strip()


def machine() -> dict:
    return {"nproc": int(sh("nproc")),
            "cpu": sh("lscpu | grep 'Model name'").split(":", 1)[-1].strip(),
            "memory_gib": sh("free -g | awk '/^Mem:/ {print $2}'"),
            "os": sh(". /etc/os-release && echo $PRETTY_NAME"),
            "python": platform.python_version(),
            "redis": sh("redis-server --version | cut -d' ' -f3").removeprefix("v="),
            "wrk": sh("wrk --version 2>&1 | head -1 | cut -d' ' -f2"),
            # Anything else running skews the figures: the load average when the run began.
            "loadavg_1min_at_start": float(Path("/proc/loadavg").read_text().split()[0])}


def print_memory(memory: dict) -> None:
    print(f"{memory['calls']:,} calls ({memory['message']}, new call id each) through the app's "
          f"WSGI callable, dict store, STATE_STORAGE_MAX_ENTRIES={memory['max_entries']:,}")
    print(f"{'calls':>9} {'VmRSS MB':>9} {'store entries':>13} {'seconds':>8}")
    for p in memory["checkpoints"]:
        print(f"{p['calls']:>9,} {p['rss_mb']:>9.1f} {p['entries']:>13,} {p['seconds']:>8.1f}")


def main() -> None:
    logging.disable(logging.WARNING)
    seconds = int(os.environ.get("BENCH_SECONDS", "5"))
    calls = os.environ.get("BENCH_CALLS", "1000000")
    results = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine()}
    with redis_url_or_private() as url:
        results["throughput"] = throughput.measure(url, seconds)
        # The memory run takes one core for ~3 minutes: the untimed counts share the other.
        memory = subprocess.Popen([sys.executable, "-m", "bench.memory", calls],
                                  stdout=subprocess.PIPE, text=True)
        results["cpu_per_message"] = cpu_per_message.measure(url)  # CPU time: not wall time
        results["storage"] = storage_round_trips.per_message(url)
        results["outside_calls"] = delivery_cost.measure(url)
        results["tool_latency"] = tool_latency.measure(url)
        out, _ = memory.communicate()
        if memory.returncode:
            raise SystemExit("bench.memory failed")
        results["memory"] = json.loads(out)
        results["metrics_cost"] = metrics_cost.measure(url)  # CPU-timed: after the memory run
        # Its own process: PROMETHEUS_MULTIPROC_DIR must be set before prometheus-client loads.
        results["metrics_cpu"] = json.loads(subprocess.run(
            [sys.executable, "-m", "bench.metrics_cpu"], env={**os.environ, "REDIS_URL": url},
            capture_output=True, text=True, check=True).stdout)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")

    m = results["machine"]
    print(f"\n{results['date']}: {m['nproc']} cores ({m['cpu']}), {m['memory_gib']} GiB, "
          f"{m['os']}, Python {m['python']}, Redis {m['redis']}, wrk {m['wrk']}, "
          f"load average {m['loadavg_1min_at_start']} at start\n")
    throughput.print_table(results["throughput"])
    print("\nCPU per message in one process (the WSGI callable called directly, no server; "
          "medians of 7 interleaved blocks of 300)")
    cpu_per_message.print_rows(results["cpu_per_message"])
    print("\nStore cost per message, 200 distinct calls each, no integrations (Redis round trips:"
          " requests redis-py sent and waited on; kv-rest: HTTP requests)")
    storage_round_trips.print_per_message(results["storage"])
    print()
    print_memory(results["memory"])
    print("\nOne end-of-call-report, GoHighLevel + Slack + Vapi API configured (local fakes)")
    delivery_cost.print_rows(results["outside_calls"])
    print("\nMetrics on the webhook path")
    metrics_cost.print_rows(results["metrics_cost"])
    print("Metrics in one process (the WSGI callable called directly, counts written to the"
          " multiprocess files; medians of 7 interleaved blocks of 300): the steadier figure")
    metrics_cost.print_in_process(results["metrics_cpu"])
    print(f"\nCRM tools, GoHighLevel answering in {tool_latency.DELAY * 1000:.0f} ms (median of"
          f" {tool_latency.REPEATS}): first tool of a call, and a later one")
    tool_latency.print_rows(results["tool_latency"])
    print(f"\nwritten to {RESULTS.relative_to(Path.cwd())}")


if __name__ == "__main__":
    main()
