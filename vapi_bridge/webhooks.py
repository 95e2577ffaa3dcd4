"""The ``webhooks`` blueprint: Vapi's Server URL and the health report."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Blueprint, abort, current_app, g, jsonify, request

from .context import Context
from .storage import get_state
from .vapi import auth, handlers, messages

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)


@bp.post("/vapi/webhook")
def vapi_webhook():
    settings = current_app.config["SETTINGS"]
    # MAX_CONTENT_LENGTH answers 413 here, before an oversized body is read. A chunked
    # body has no length to check first: werkzeug stops reading at the limit instead.
    body = request.get_data(cache=True)
    if request.content_length is None and len(body) >= settings.max_body_bytes:
        abort(413)
    failure = auth.verify(settings, body, request.headers, request.args)
    if failure:
        log.warning("[WEBHOOK] Unauthorized requestId=%s check=%s", g.request_id, failure)
        return jsonify(error="unauthorized"), 401
    message = messages.parse(body)
    g.message_type, g.call_id = message["type"], messages.loggable_call_id(message)
    ctx = Context(state=get_state(), settings=settings, request_id=g.request_id,
                  integrations=current_app.extensions["integrations"])
    return jsonify(handlers.dispatch(message, ctx))


@bp.get("/health")
def health():
    storage = get_state().status()
    ok = storage["available"]
    body = {
        "status": "ok" if ok else "degraded",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "version": current_app.config["VERSION"],
        "auth": current_app.config["SETTINGS"].auth_modes,
        "storage": storage,
    }
    return jsonify(body), 200 if ok else 503
