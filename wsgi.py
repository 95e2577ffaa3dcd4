"""WSGI entry point for gunicorn (``wsgi:app``) and Vercel.

Vercel's loader prefers a top-level name ``handler`` over ``app``: never define one here.
"""

import sys

from vapi_bridge import create_app
from vapi_bridge.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:
    sys.exit(f"vapi-bridge: configuration error: {exc}")  # one line, no traceback
