"""The ``webhooks`` blueprint: Vapi's Server URL and the health report."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, jsonify

from .storage import get_state

bp = Blueprint("webhooks", __name__)


@bp.get("/health")
def health():
    storage = get_state().status()
    ok = storage["available"]
    body = {
        "status": "ok" if ok else "degraded",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "version": current_app.config["VERSION"],
        "storage": storage,
    }
    return jsonify(body), 200 if ok else 503
