"""Prometheus metrics: counts the request path adds to, and ``GET /metrics`` to read them.

Off unless ``METRICS_TOKEN`` is set: nothing is counted and ``/metrics`` is a 404. Under
gunicorn each worker is its own process: prometheus-client's multiprocess mode has every
worker write its counts to files in ``PROMETHEUS_MULTIPROC_DIR`` (gunicorn.conf.py makes
one), and a scrape adds them up, whichever worker answers. Without that directory (flask
run, Vercel) the process's own registry is read.

Labels are bounded vocabularies (message types Vapi documents, the tool registry, the
delivery steps, the outside services): never an id, a phone number or free text.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Container, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, g, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from .outbox import Outbox
from .storage import StateStore, StorageError, get_state

# Vapi's server message types (its docs and SDK 3); any other type is counted as "other".
MESSAGE_TYPES = frozenset({
    "assistant-request", "assistant.speechStarted", "assistant.started", "call.artifact.upload",
    "call.delete.failed", "call.deleted", "call.endpointing.request", "campaign.predial",
    "chat.created", "chat.deleted", "conversation-update", "end-of-call-report",
    "function-call", "handoff-destination-request", "hang", "knowledge-base-request",
    "language-change-detected", "language-changed", "model-output", "phone-call-control",
    "session.created", "session.deleted", "session.updated", "speech-update", "status-update",
    "tool-calls", "transcript", "transfer-destination-request", "transfer-update",
    "user-interrupted", "voice-input", "voice-request"})
# Vapi gives assistant-request 7.5 s, tools TOOL_DEADLINE_SECONDS (8), the pipeline 15.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 7.5, 10, 15, 30)

MESSAGES = Counter("vapi_bridge_messages", "Messages posted to /vapi/webhook",
                   ("type", "outcome"))
REQUEST_SECONDS = Histogram("vapi_bridge_request_seconds", "Time to answer a request",
                            ("route",), buckets=BUCKETS)
DELIVERIES = Counter("vapi_bridge_deliveries", "Delivery steps of ended calls, by outcome",
                     ("step", "status"))
TOOL_CALLS = Counter("vapi_bridge_tool_calls", "Tool calls run", ("tool", "outcome"))
OUTSIDE_SECONDS = Histogram("vapi_bridge_outside_request_seconds",
                            "Time of a request to an outside service, its retries included",
                            ("service",), buckets=BUCKETS)
# One per live worker: the file of a dead one is removed (gunicorn.conf.py child_exit).
WORKERS = Gauge("vapi_bridge_workers", "Processes serving the app", multiprocess_mode="livesum")

disable_created_metrics()  # no *_created series: multiprocess mode has none either
bp = Blueprint("metrics", __name__)
# Process-wide, like the metrics themselves: the app of this process says (init_app).
_counting = False


def init_app(app: Flask, handled_types: Container[str]) -> None:
    """``/metrics``, and with ``METRICS_TOKEN`` the timing of every request."""
    global _counting
    _counting = bool(app.config["SETTINGS"].metrics_token)
    app.register_blueprint(bp)
    if _counting:
        WORKERS.set(1)
        app.wsgi_app = _started(app.wsgi_app)  # cheaper than a before_request hook
        app.after_request(_answered(handled_types))


STARTED = "vapi_bridge.metrics.started"


def _started(wsgi_app: Callable) -> Callable:
    def started(environ: dict, start_response: Callable) -> Any:
        environ[STARTED] = time.perf_counter()
        return wsgi_app(environ, start_response)

    return started


def _answered(handled_types: Container[str]) -> Callable[[Response], Response]:
    def answered(response: Response) -> Response:
        current = request._get_current_object()  # one proxy look-up, not four
        started = current.environ.get(STARTED)
        if started is not None:
            rule = current.url_rule
            _child(REQUEST_SECONDS, rule.rule if rule else "unmatched").observe(  # not the path
                time.perf_counter() - started)
        if current.endpoint == "webhooks.vapi_webhook":
            kind = g.get("message_type")
            _child(MESSAGES, kind if kind in MESSAGE_TYPES else "other",
                   _outcome(response.status_code, kind in handled_types)).inc()
        return response

    return answered


_children: dict[tuple, Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, kept: the request path skips the library's lookup and lock
    (the labels are bounded, so is this dict)."""
    child = _children.get((metric, *labels))
    if child is None:
        child = _children[(metric, *labels)] = metric.labels(*labels)
    return child


def _outcome(status: int, handled: bool) -> str:
    if status < 300:
        return "handled" if handled else "ignored"
    if status in (401, 403, 409):  # no secret, or another client's secret or call
        return "unauthorized"
    return "invalid" if status < 500 else "error"


def deliveries(statuses: Mapping[str, str]) -> None:
    """A call's steps as the pipeline left them: ok, skipped, parked or dead."""
    if _counting:
        for step, status in statuses.items():
            _child(DELIVERIES, step, status).inc()


def retried(step: str, outcome: str) -> None:
    """How a parked step left the outbox: delivered, or dead. Parked again is not counted
    again: it is the same parked delivery."""
    status = {"delivered": "retried-ok", "dead": "dead"}.get(outcome)
    if _counting and status:
        _child(DELIVERIES, step, status).inc()


def tool_call(tool: str, outcome: str) -> None:
    """``tool`` as the registry names it (else "unknown"); outcome ok, error or failed."""
    if _counting:
        _child(TOOL_CALLS, tool, outcome).inc()


@contextmanager
def outside(service: str) -> Iterator[None]:
    """Time a request to ``service`` (ghl, slack, vapi), however it ends."""
    started = time.perf_counter()
    try:
        yield
    finally:
        if _counting:
            _child(OUTSIDE_SECONDS, service).observe(time.perf_counter() - started)


@bp.get("/metrics")
def scrape():
    settings = current_app.config["SETTINGS"]
    if not settings.metrics_token:
        abort(404)
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {settings.metrics_token}".encode()):
        return jsonify(error="unauthorized"), 401, {"WWW-Authenticate": "Bearer"}
    registry = CollectorRegistry()
    if settings.metrics_dir:
        MultiProcessCollector(registry, path=settings.metrics_dir)  # registers itself
    else:
        registry.register(REGISTRY)
    registry.register(StoreCollector(get_state()))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class StoreCollector:
    """The outbox and the store, read at scrape time in one round trip."""

    def __init__(self, state: StateStore):
        self.state = state

    def collect(self):
        try:
            sizes = Outbox(self.state).sizes()
        except StorageError:
            sizes = None
        if getattr(self.state.backend, "degraded", False):
            sizes = None  # the in-process stand-in answered: not the store's outbox
        available = GaugeMetricFamily("vapi_bridge_store_available",
                                      "Whether the state store answered this scrape")
        available.add_metric([], 0 if sizes is None else 1)
        yield available
        if sizes is not None:
            jobs = GaugeMetricFamily("vapi_bridge_outbox_jobs", "Outbox jobs waiting",
                                     labels=("state",))
            for state, count in sizes.items():
                jobs.add_metric([state], count)
            yield jobs
