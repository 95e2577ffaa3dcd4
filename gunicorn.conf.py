"""gunicorn settings, read automatically from the working directory (``gunicorn wsgi:app``)."""

import logging
import os
import shutil
import tempfile

# prometheus-client picks its multiprocess mode when first imported (with the app, below),
# so the directory must be in the environment first. Every worker writes its counts there
# and GET /metrics adds them up (vapi_bridge/metrics.py). A fresh one per master start.
METRICS_DIR_PREFIX = "vapi-bridge-metrics-"
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=METRICS_DIR_PREFIX)
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from prometheus_client import multiprocess  # noqa: E402

from vapi_bridge.config import ConfigError, load_settings  # noqa: E402

# JSON log lines by default in production (LOG_FORMAT=text to read them by eye).
os.environ.setdefault("LOG_FORMAT", "json")

wsgi_app = "wsgi:app"
bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"  # webhooks wait on Redis and HTTP: threads overlap that waiting
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = 30
graceful_timeout = 20
keepalive = 5
# Workers are recycled (a bound on a slow leak) every ~100,000 requests, not ~2,000: a new
# worker costs ~0.4 s of CPU (imports, create_app, new pools: `import wsgi` measured 0.35 s)
# and the cheapest request ~0.5-1 ms, so recycling every N requests costs 400-800/N of the
# CPU: 20-40 % at 2,000, under 1 % at 100,000. GUNICORN_MAX_REQUESTS=0 turns it off.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "100000"))
max_requests_jitter = max_requests // 10
# The path without its query string: ?token= must never reach a log.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'
# No preload: each worker builds its own app (and its own connection pools), and a
# configuration error fails the worker's boot, which stops gunicorn.
preload_app = False

try:
    app_settings = load_settings()
    storage_backend, access_log = app_settings.storage_backend, app_settings.access_log
except ConfigError:
    storage_backend, access_log = None, True  # the workers fail to boot with the error
# One line per request on stdout. ACCESS_LOG=false: none, 0.03-0.13 ms less CPU per request,
# up to a fifth of the cheapest messages (docs/measured.md).
accesslog = "-" if access_log else None

if storage_backend in ("memory", None):
    # The dict store lives inside one process: two workers would each keep their own
    # summaries and note claims, and dedupe nothing between them. One worker, many threads.
    workers = 1
    # And never recycled: a new worker starts with an empty dict, which would lose every
    # summary, claim and parked delivery.
    max_requests, max_requests_jitter = 0, 0
    if int(os.environ.get("WEB_CONCURRENCY", "1")) > 1:
        logging.getLogger("gunicorn.error").warning(
            "WEB_CONCURRENCY ignored: the in-memory store needs a single worker"
        )
else:
    workers = int(os.environ.get("WEB_CONCURRENCY", str(2 * (os.cpu_count() or 1) + 1)))


def child_exit(server, worker) -> None:
    """A dead worker's live gauges go with it; its counters stay (totals never go back)."""
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    """The metrics directory made above goes when the master stops (one set by hand stays)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if os.path.basename(directory).startswith(METRICS_DIR_PREFIX):
        shutil.rmtree(directory, ignore_errors=True)
