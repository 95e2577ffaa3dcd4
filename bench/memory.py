"""Resident memory of one process running the app on the dict store, over 1,000,000 calls.

Each call is a status-update with a new call id, handed to the app's WSGI callable (the
whole request path: Flask, auth, parsing, validation, handler, store; no sockets). VmRSS
from /proc/self/status and the store's entry count at every quarter show whether
STATE_STORAGE_MAX_ENTRIES keeps the dict bounded.

    .venv/bin/python -m bench.memory [CALLS]     (prints one JSON line)
"""

from __future__ import annotations

import io
import json
import logging
import sys
import time

from vapi_bridge import create_app

TEMPLATE = '{"message": {"type": "status-update", "status": "in-progress", "call": {"id": "%s"}}}'


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def run(calls: int = 1_000_000, checkpoints: int = 4) -> dict:
    logging.disable(logging.WARNING)  # no log output for a million requests
    app = create_app({"STATE_STORAGE": "memory"})
    backend = app.extensions["state_storage"].backend
    statuses: list[str] = []

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        statuses.append(status)

    def post(call_id: str) -> None:
        body = (TEMPLATE % call_id).encode()
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/vapi/webhook", "SERVER_NAME": "bench",
                   "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.version": (1, 0),
                   "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
                   "wsgi.errors": sys.stderr, "wsgi.multithread": True,
                   "wsgi.multiprocess": False, "wsgi.run_once": False,
                   "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body))}
        b"".join(app(environ, start_response))
        if statuses.pop() != "200 OK":
            raise RuntimeError(f"call {call_id} was not answered 200")

    post("warm-up")
    points, started = [], time.monotonic()
    step = calls // checkpoints
    for done in range(0, calls + 1, step):
        if done:
            for i in range(done - step, done):
                post(f"mem-{i}")
        points.append({"calls": done, "rss_mb": round(rss_mb(), 1), "entries": len(backend),
                       "seconds": round(time.monotonic() - started, 1)})
    return {"calls": calls, "max_entries": app.config["SETTINGS"].storage_max_entries,
            "message": "status-update", "checkpoints": points}


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)))
