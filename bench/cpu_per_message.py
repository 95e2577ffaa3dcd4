"""CPU per message, in one process, without a server: the app's WSGI callable called directly.

Load on a shared box moves requests/s a lot; this count moves little. For each message kind,
the app on Redis (logging at INFO, into /dev/null: the lines are formatted, not shown), the
floor of bench/floor_app.py and the bare Flask app of bench/baseline_app.py are called in
turn, ROUNDS blocks of N requests each, interleaved; the process CPU time
(``time.process_time``, every thread) of a block over its requests is one sample, and the
median is kept. A new call id per request.

Under load the CPU time still moves by 10 % or so; instructions (valgrind's callgrind) do
not: ``instructions`` counts them per request, the same way.

    .venv/bin/python -m bench.cpu_per_message [N]          # the table
    .venv/bin/python -m bench.cpu_per_message 2000 KIND    # cProfile of the app, KIND only
    .venv/bin/python -m bench.cpu_per_message 100 instructions  # under callgrind (minutes)
"""

from __future__ import annotations

import cProfile
import io
import logging
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path

import redis

from bench import KINDS, floor_app, message
from bench.baseline_app import app as baseline
from tests.redis_server import redis_url_or_private

ROUNDS = 7
PLACEHOLDER = "__CALL_ID__"


def requests_of(kind: str) -> Callable[[int], dict]:
    """A WSGI environ for request ``i``: a POST of ``kind`` with its own call id."""
    prefix, suffix = (part.encode() for part in message(kind, PLACEHOLDER).split(PLACEHOLDER))
    run = uuid.uuid4().hex[:8]

    def environ(i: int) -> dict:
        body = b"%s%s-%d%s" % (prefix, run.encode(), i, suffix)
        return {"REQUEST_METHOD": "POST", "PATH_INFO": "/vapi/webhook", "QUERY_STRING": "",
                "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
                "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": "application/json",
                "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
                "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.multithread": True,
                "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0)}

    return environ


def call(app: Callable, environ: dict) -> int:
    status = []
    chunks = app(environ, lambda s, headers, exc_info=None: status.append(s))
    b"".join(chunks)
    getattr(chunks, "close", lambda: None)()
    return int(status[0][:3])


def block(app: Callable, environ: Callable[[int], dict], start: int, n: int) -> float:
    """CPU µs per request over ``n`` requests."""
    cpu = time.process_time()
    for i in range(start, start + n):
        if call(app, environ(i)) != 200:
            raise SystemExit(f"request {i} not answered 200")
    return (time.process_time() - cpu) / n * 1e6


def our_app(redis_url: str, prefix: str):
    """The app as gunicorn.conf.py runs it (JSON lines at INFO), its log handler on /dev/null:
    every line is still filtered and formatted."""
    from vapi_bridge import create_app
    stderr, sys.stderr = sys.stderr, open(os.devnull, "w")  # noqa: SIM115
    try:
        return create_app({"REDIS_URL": redis_url, "STATE_STORAGE_PREFIX": prefix,
                           "LOG_LEVEL": "INFO", "LOG_FORMAT": "json"})
    finally:
        sys.stderr = stderr


def measure(redis_url: str, n: int = 300) -> list[dict]:
    prefix = f"benchcpu{uuid.uuid4().hex[:6]}"
    apps = {"baseline": baseline, "floor": floor_app.create(redis_url),
            "redis": our_app(redis_url, prefix)}
    rows, disabled = [], logging.root.manager.disable
    logging.disable(logging.NOTSET)  # bench.run_all silences logging: the INFO lines count here
    try:
        for kind in KINDS:
            environ = requests_of(kind)
            samples: dict[str, list[float]] = {name: [] for name in apps}
            for app in apps.values():  # warm up
                block(app, environ, 0, 50)
            for r in range(ROUNDS):
                for name, app in apps.items():
                    samples[name].append(block(app, environ, 1000 + r * n, n))
            base, floor, ours = (statistics.median(samples[name]) for name in apps)
            rows.append({"body": kind, "bytes": len(message(kind, str(uuid.uuid4()))),
                         "baseline_cpu_us": base, "floor_cpu_us": floor, "redis_cpu_us": ours,
                         "ratio": ours / base})
    finally:
        logging.disable(disabled)
        client = redis.Redis.from_url(redis_url)
        for key in [*client.scan_iter(match=f"{prefix}*", count=1000),
                    *client.scan_iter(match="floor:floor:*", count=1000)]:
            client.delete(key)
    return rows


def print_rows(rows: list[dict]) -> None:
    print(f"{'body':19} {'bytes':>6} {'bare Flask µs':>13} {'floor µs':>8} {'ours µs':>8} "
          f"{'ours/bare':>9}")
    for r in rows:
        print(f"{r['body']:19} {r['bytes']:>6} {r['baseline_cpu_us']:13.0f} "
              f"{r['floor_cpu_us']:8.0f} {r['redis_cpu_us']:8.0f} {r['ratio']:9.2f}")


def profile(redis_url: str, kind: str, n: int) -> None:
    app, environ = our_app(redis_url, f"benchcpu{uuid.uuid4().hex[:6]}"), requests_of(kind)
    block(app, environ, 0, 50)
    profiler = cProfile.Profile(time.process_time)  # CPU: waiting on Redis is not counted
    profiler.runcall(block, app, environ, 100, n)
    pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "tottime")).print_stats(20)


def segments(redis_url: str, n: int) -> None:
    """Run under callgrind by ``instructions``: each block of ``n`` requests starts with a call
    of zlib.crc32, where callgrind dumps its counts (``--dump-before=zlib_crc32``)."""
    apps = {"baseline": baseline, "floor": floor_app.create(redis_url),
            "redis": our_app(redis_url, f"benchcpu{uuid.uuid4().hex[:6]}")}
    plans = [(kind, requests_of(kind)) for kind in KINDS]
    for app in apps.values():  # warm up
        for _kind, environ in plans:
            block(app, environ, 0, 20)
    for kind, environ in plans:
        for name, app in apps.items():
            zlib.crc32(f"{name} {kind}".encode())
            print(name, kind, flush=True)
            block(app, environ, 100, n)
    zlib.crc32(b"end")


def instructions(n: int) -> list[dict]:
    """Instructions per request of each app and body, counted by callgrind."""
    with tempfile.TemporaryDirectory() as directory:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--dump-before=zlib_crc32",
             f"--callgrind-out-file={directory}/cg.out", sys.executable, "-m",
             "bench.cpu_per_message", str(n), "segments"],
            capture_output=True, text=True, check=True).stdout.split("\n")
        labels = [line.split() for line in out if line.strip()]
        counts = []
        for part in range(2, len(labels) + 2):  # part 1: start-up and warm-up
            text = Path(f"{directory}/cg.out.{part}").read_text()
            counts.append(int(next(line for line in text.splitlines()
                                   if line.startswith("totals:")).split()[1]))
    per = {tuple(label): count / n for label, count in zip(labels, counts, strict=True)}
    return [{"body": kind, "baseline_instructions": per["baseline", kind],
             "floor_instructions": per["floor", kind], "redis_instructions": per["redis", kind],
             "ratio": per["redis", kind] / per["baseline", kind]} for kind in KINDS]


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    if sys.argv[2:] == ["instructions"]:
        for row in instructions(count):
            print(f"{row['body']:19} bare Flask {row['baseline_instructions'] / 1e6:6.2f} M"
                  f"  floor {row['floor_instructions'] / 1e6:6.2f} M"
                  f"  ours {row['redis_instructions'] / 1e6:6.2f} M  ratio {row['ratio']:5.2f}")
        raise SystemExit
    with redis_url_or_private() as url:
        if sys.argv[2:] == ["segments"]:
            segments(url, count)
        elif len(sys.argv) > 2:
            profile(url, sys.argv[2], count)
        else:
            print_rows(measure(url, count))
