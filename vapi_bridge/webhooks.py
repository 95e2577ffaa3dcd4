"""The ``webhooks`` blueprint: Vapi's Server URL, the original's helper routes, /health."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import wraps

from flask import Blueprint, abort, current_app, g, jsonify, request

from . import pipeline
from .context import current_context
from .ids import check_url_id
from .integrations import DeliveryError
from .signin import check_admin_token
from .storage import get_state
from .vapi import auth, handlers, messages

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)


def authenticated(view):
    """Size limit, then the webhook's token/HMAC checks, before the view reads anything."""

    @wraps(view)
    def checked(*args, **kwargs):
        settings = current_app.config["SETTINGS"]
        # MAX_CONTENT_LENGTH answers 413 here, before an oversized body is read. A chunked
        # body has no length to check first: werkzeug stops reading at the limit instead.
        body = request.get_data(cache=True)
        if request.content_length is None and len(body) >= settings.max_body_bytes:
            abort(413)
        failure = auth.verify(settings, body, request.headers, request.args)
        if failure:
            log.warning("[WEBHOOK] Unauthorized %s requestId=%s check=%s", request.path,
                        g.request_id, failure)
            return jsonify(error="unauthorized"), 401
        return view(*args, **kwargs)

    return checked


@bp.post("/vapi/webhook")
@authenticated
def vapi_webhook():
    message = messages.parse(request.get_data(cache=True))
    g.message_type, g.call_id = message["type"], messages.loggable_call_id(message)
    return jsonify(handlers.dispatch(message, current_context()))


@bp.post("/vapi/pull-metadata")
@authenticated
def pull_metadata():
    """Read a call from Vapi and run the pipeline for it; the claims make a re-run safe."""
    body = messages.load_json(request.get_data(cache=True))
    call_id = body.get("callId") if isinstance(body, dict) else None
    try:
        g.call_id = check_url_id(call_id, "callId")
    except ValueError as exc:
        raise messages.InvalidPayload({"callId": [str(exc)]}) from None
    ctx = current_context()
    if ctx.integrations.vapi is None:
        return jsonify(error="vapi_api_not_configured",
                       message="Set VAPI_API_KEY to read calls from Vapi."), 503
    try:
        replayed = pipeline.replay(call_id, ctx)
    except DeliveryError as exc:
        log.warning("[METADATA_PULL] Vapi unavailable callId=%s: %s", call_id, exc)
        return jsonify(error="vapi_unavailable", message=str(exc)), 502
    if replayed is None:
        return jsonify(error="call_not_found", callId=call_id), 404
    client, delivery = replayed
    return jsonify(callId=call_id, client=client.name, delivery=delivery)


@bp.post("/slack/test")
@authenticated
def slack_test():
    """Slack ``auth.test`` with a client's bot token (``?client=<name>``, else the default)."""
    settings = current_app.config["SETTINGS"]
    name = request.args.get("client") or settings.clients.default.name
    client = settings.clients.by_name(name)
    if client is None:
        return jsonify(error="unknown_client", client=name), 404
    if not (client.slack_bot_token and client.slack_channel_id):
        detail = ("it posts through an incoming webhook, which has no auth.test"
                  if client.slack_webhook_url else "it has no Slack settings")
        return jsonify(error="slack_not_testable", client=name,
                       message=f"Client {name} has no bot token to test: {detail}."), 400
    slack = current_app.extensions["integrations"].slack(client)
    try:
        identity = slack.auth_test()
    except DeliveryError as exc:
        return jsonify(ok=False, client=name, error=str(exc)), 502
    return jsonify(ok=True, client=name, team=identity.get("team"), user=identity.get("user"))


@bp.get("/health")
def health():
    """Public: status, version, auth modes, store. Each client's integrations (their names
    included) only for ``Authorization: Bearer <ADMIN_TOKEN>`` (sign-in limited)."""
    settings = current_app.config["SETTINGS"]
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    details = False
    if settings.admin_token and scheme.lower() == "bearer":
        verdict = check_admin_token(given.strip())
        if verdict.retry_after is not None:
            return (jsonify(error="too_many_attempts", retryAfter=verdict.retry_after), 429,
                    {"Retry-After": str(verdict.retry_after)})
        if not verdict.ok:
            return jsonify(error="unauthorized"), 401
        details = True
    storage = get_state().status()
    ok = storage["available"]
    body = {
        "status": "ok" if ok else "degraded",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "version": current_app.config["VERSION"],
        "auth": settings.auth_modes,
        "storage": storage,
    }
    if details:
        body["integrations"] = {client.name: {"ghl": client.has_ghl, "slack": client.has_slack,
                                              "vapi_api": bool(settings.vapi_api_key)}
                                for client in settings.clients}
    return jsonify(body), 200 if ok else 503
