"""Logging: set up before the app exists (Flask's logging guide), JSON or text lines,
one request id per request, and redaction in one place.

The filters sit on the handlers, so every record passes them, ours and the libraries':
secrets (Bearer tokens, ``?token=``, Slack and GoHighLevel tokens), emails and phone
numbers (last 4 digits kept) are scrubbed from the message before it is written.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import uuid

from flask import Flask, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_TAG = re.compile(r"^\[([A-Z_]+)\]\s*")
_REDACTIONS = [
    (re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"), r"\1[redacted]"),
    (re.compile(r"(?i)([?&](?:_?token|secret)=)[^&\s\"']+"), r"\1[redacted]"),
    (re.compile(r"\b(?:xox[abposr]|pit)-[A-Za-z0-9-]+"), "[redacted]"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[email]"),
    (re.compile(r"(?:\+|%2[Bb])\d[\d ().-]{4,16}(\d{4})\b"), r"***\1"),
    (re.compile(r"\(\d{3}\)\s?\d{3}-(\d{4})\b"), r"***\1"),
]


def redact(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


# What every line logged in this context carries: request, call and client. A
# ContextVar, not ``g``, so the delivery threads and the outbox drainer carry it too.
_fields: contextvars.ContextVar[dict[str, str | None]] = contextvars.ContextVar("log_fields")
LOG_FIELDS = ("request_id", "call_id", "client")


def bind(**fields: str | None) -> None:
    """Add ``fields`` (request_id, call_id, client) to every later line in this context."""
    _fields.set({**_fields.get({}), **fields})


class ContextFilter(logging.Filter):
    """Adds ``request_id``, ``call_id``, ``client`` and the seed's bracket tag as ``event``."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _fields.get({})
        in_request = has_request_context()
        record.request_id = fields.get("request_id")
        record.call_id = fields.get("call_id") or (g.get("call_id") if in_request else None)
        record.client = fields.get("client")
        tag = _TAG.match(str(record.msg))
        record.event = tag.group(1) if tag else None
        return True


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    root = logging.getLogger()
    if not root.handlers:  # else someone (Vercel's runtime, pytest) installed theirs: keep it
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_formatter(log_format))
        root.addHandler(handler)
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
            handler.addFilter(RedactingFilter())
    logging.getLogger("vapi_bridge").setLevel(level)
    # These log whole URLs and bodies (phone numbers, emails, tool arguments): urllib3 even
    # in its retry warnings. Our own lines say what failed, without them.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    logging.getLogger("slack_sdk").setLevel(logging.INFO)


def _formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(JSON_FIELDS, rename_fields={"asctime": "ts", "levelname": "level",
                                                         "name": "logger"},
                             reserved_attrs=[*_RESERVED, "color_message"])
    return logging.Formatter(TEXT_FORMAT)


# LogRecord attributes that are not "extra" fields (the JSON formatter adds the rest).
_RESERVED = [name for name in vars(logging.makeLogRecord({})) if name not in (
    "request_id", "call_id", "event")] + ["message", "asctime"]


def install_request_ids(app: Flask) -> None:
    """One id per request: the caller's ``X-Request-ID`` if it is sane, else a new one."""

    @app.before_request
    def assign():
        offered = request.headers.get("X-Request-ID", "")
        g.request_id = offered if _SAFE_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
        _fields.set({"request_id": g.request_id})  # a pooled thread starts each request clean

    @app.after_request
    def expose(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response
