"""Logging set-up, done before the app exists (Flask's logging guide), and request ids."""

from __future__ import annotations

import logging
import re
import uuid

from flask import Flask, g, request

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def configure_logging(level: str = "INFO") -> None:
    # Leave a handler someone else installed (Vercel's runtime, pytest) alone.
    if not logging.getLogger().handlers:
        logging.basicConfig(format=FORMAT)
    logging.getLogger("vapi_bridge").setLevel(level)
    # These log whole URLs and bodies (phone numbers, emails, tool arguments): urllib3 even
    # in its retry warnings. Our own lines say what failed, without them.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    logging.getLogger("slack_sdk").setLevel(logging.INFO)


def install_request_ids(app: Flask) -> None:
    """One id per request: the caller's ``X-Request-ID`` if it is sane, else a new one."""

    @app.before_request
    def assign():
        offered = request.headers.get("X-Request-ID", "")
        g.request_id = offered if _SAFE_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex

    @app.after_request
    def expose(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response
