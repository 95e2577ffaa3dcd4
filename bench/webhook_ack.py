"""Ack time and store cost of an end-of-call-report, under gunicorn with the production config.

Starts a private redis-server (or uses REDIS_URL), serves the app with gunicorn.conf.py
on loopback once per store, POSTs N end-of-call-reports (distinct call ids) from one
keep-alive client, and prints the median / p90 / p99 time to the answer, plus the Redis
commands each report cost (from INFO commandstats).

    .venv/bin/python -m bench.webhook_ack [N]
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import redis
import requests

from bench import message, redis_commands
from tests.redis_server import redis_url_or_private

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")


def serve(env: dict[str, str], args: tuple[str, ...] = (),
          command: tuple[str, ...] = (str(GUNICORN),)) -> tuple[subprocess.Popen, str]:
    """gunicorn with gunicorn.conf.py on a free loopback port (``args`` add to its command
    line, e.g. another app or ``--workers``; ``command`` another server); no access log
    (ACCESS_LOG=false, unless ``env`` says otherwise), app logs from WARNING up."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {"PATH": os.environ["PATH"], "HOST": "127.0.0.1", "PORT": str(port),
           "LOG_LEVEL": "WARNING", "ACCESS_LOG": "false", **env}
    args = tuple(arg.replace("{port}", str(port)) for arg in args)
    server = subprocess.Popen([*command, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            requests.get(f"{url}/health", timeout=1)
            return server, url
        except requests.RequestException:  # not up yet (or slow to answer on a busy machine)
            time.sleep(0.05)
    server.kill()  # not left running behind the error
    raise RuntimeError("gunicorn did not start")


def commands(client: redis.Redis | None) -> int:
    return 0 if client is None else redis_commands(client)


def run(name: str, env: dict[str, str], client: redis.Redis | None, n: int) -> dict:
    server, url = serve(env)
    session = requests.Session()
    headers = {"Content-Type": "application/json"}
    try:
        bodies = [message("end-of-call-report", f"bench-{name}-{i}") for i in range(n)]
        for body in bodies[:50]:  # warm up connections and imports
            session.post(f"{url}/vapi/webhook", data=body, headers=headers)
        timings, before = [], commands(client)
        for body in bodies[50:]:
            started = time.perf_counter()
            response = session.post(f"{url}/vapi/webhook", data=body, headers=headers)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
        per_report = (commands(client) - before) / (n - 50)
        before = commands(client)
        for i in range(n - 50):
            session.post(f"{url}/vapi/webhook", headers=headers,
                         data=message("status-update", f"bench-{name}-{i}"))
        per_status = (commands(client) - before) / (n - 50)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    quantiles = statistics.quantiles(timings, n=100)
    return {"store": name, "median_ms": statistics.median(timings), "p90_ms": quantiles[89],
            "p99_ms": quantiles[98], "commands_per_report": per_report,
            "commands_per_status": per_status}


def main(n: int = 1000) -> None:
    with redis_url_or_private() as url:
        client = redis.Redis.from_url(url)
        try:
            results = [
                run("memory", {}, None, n),
                run("redis", {"REDIS_URL": url, "STATE_STORAGE_PREFIX": "benchack"}, client, n),
            ]
        finally:
            for key in client.scan_iter(match="benchack*", count=1000):
                client.delete(key)
    print(f"{n - 50} end-of-call-reports per store, one keep-alive client, gunicorn on loopback")
    print(f"{'store':8} {'median ms':>10} {'p90 ms':>8} {'p99 ms':>8} {'cmds/EOCR':>10} "
          f"{'cmds/status':>12}")
    for r in results:
        print(f"{r['store']:8} {r['median_ms']:10.2f} {r['p90_ms']:8.2f} {r['p99_ms']:8.2f} "
              f"{r['commands_per_report']:10.2f} {r['commands_per_status']:12.2f}")
    print(f"redis/memory median ratio: {results[1]['median_ms'] / results[0]['median_ms']:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
