"""WSGI entry point for gunicorn (``wsgi:app``) and Vercel.

Vercel's builder looks for ``app`` assigned at the top level of this file, and its
loader prefers a top-level name ``handler`` over ``app``: never define one here.
"""

import sys

from flask import Flask

from vapi_bridge import create_app
from vapi_bridge.config import ConfigError


def _create_app() -> Flask:
    try:
        return create_app()
    except ConfigError as exc:
        sys.exit(f"vapi-bridge: configuration error: {exc}")  # one line, no traceback


app = _create_app()
