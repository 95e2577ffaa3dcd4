"""Logging set-up, done before the app exists (Flask's logging guide)."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    # Leave a handler someone else installed (Vercel's runtime, pytest) alone.
    if not logging.getLogger().handlers:
        logging.basicConfig(format=FORMAT)
    logging.getLogger("vapi_bridge").setLevel(level)
