"""Logging: set up before the app exists (Flask's logging guide), JSON or text lines,
one request id per request, and redaction in one place.

The filters sit on the handlers, so every record passes them, ours and the libraries':
secrets (Bearer tokens, ``?token=``, Slack and GoHighLevel tokens), emails and phone
numbers (last 4 digits kept) are scrubbed from the message, every other text field
(``call_id``, ``client``, extras) and the traceback before it is written. In the text
format control characters are escaped: one record is one line, as in JSON.
"""

from __future__ import annotations

import contextvars
import functools
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
# (pattern, replacement, what any match contains): the last, a quick search, spares the
# slow patterns (up to 10 µs each on a 32-character id) the text they cannot match.
_REDACTIONS = [
    (re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"), r"\1[redacted]", None),
    (re.compile(r"(?i)([?&](?:_?token|secret)=)[^&\s\"']+"), r"\1[redacted]", None),
    (re.compile(r"\b(?:xox[abposr]|pit)-[A-Za-z0-9-]+"), "[redacted]", None),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[email]", re.compile("@")),
    (re.compile(r"(?:\+|%2[Bb])\d[\d ().-]{4,16}(\d{4})\b"), r"***\1",
     re.compile(r"\+\d|%2[Bb]\d")),
    # National (NANP) format: 4155550124, 415-555-0126, (415) 555-0126, 1-415-555-0126. The
    # area code and exchange start with 2-9 and the digits stand alone (\b), so epoch
    # seconds (1...), epoch ms (13 digits), UUIDs and ISO dates are left alone.
    (re.compile(r"(?:(?:\b1[-. ]?)?\([2-9]\d{2}\) ?|\b(?:1[-. ]?)?[2-9]\d{2}[-. ]?)"
                r"[2-9]\d{2}[-. ]?(\d{4})\b"), r"***\1", re.compile(r"[2-9]\d{2}[-. ]?\d{4}")),
]
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED_CONTROL = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
MAX_FIELD = 100


def redact(text: str) -> str:
    for pattern, replacement, contained in _REDACTIONS:
        if contained is None or contained.search(text):
            text = pattern.sub(replacement, text)
    return text


@functools.lru_cache(maxsize=4096)
def _redact_field(text: str) -> str:
    # request_id, call_id, client and event repeat on every line of a request: cached.
    return redact(text)


def cut(value: object, limit: int = MAX_FIELD) -> object:
    """A caller-chosen string (a status, an endedReason) cut to ``limit`` characters for a log."""
    if isinstance(value, str) and len(value) > limit:
        return value[:limit - 1] + "…"
    return value


def escape_controls(text: str) -> str:
    """``\\n``, ``\\r``, ``\\t``, ``\\xNN``: no control character can start a forged line."""
    return _CONTROL.sub(lambda m: _NAMED_CONTROL.get(m[0]) or
                        (f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}"),
                        text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        fields = vars(record)
        for name in fields.keys() - _RESERVED:  # call_id, client, event and any extra
            value = fields[name]
            if isinstance(value, str):
                fields[name] = _redact_field(value) if len(value) <= 256 else redact(value)
        if record.exc_info:  # the traceback as text, redacted, in place of the live exception
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
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
    return TextFormatter(TEXT_FORMAT)


class TextFormatter(logging.Formatter):
    """One record, one line: a control character in a field (a forged "\\n2026-... INFO")
    is written escaped, and so is a traceback's line breaks."""

    def format(self, record: logging.LogRecord) -> str:
        return escape_controls(super().format(record))


# LogRecord attributes that are not "extra" fields (the JSON formatter adds the rest).
_RESERVED = frozenset([name for name in vars(logging.makeLogRecord({})) if name not in (
    "request_id", "call_id", "event")] + ["message", "asctime"])


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
