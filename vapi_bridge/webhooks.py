"""The ``webhooks`` blueprint: Vapi's Server URL, the original's helper routes, /health."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime
from functools import partial, wraps
from typing import Any

from flask import Blueprint, abort, current_app, g, jsonify, request

from . import handlers, logs, pipeline
from .clients import Client, ClientDirectory, WrongClient
from .context import Context, current_context
from .ids import check_url_id
from .integrations import DeliveryError
from .signin import check_admin_token
from .storage import get_state
from .vapi import auth, messages

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)


def authenticated(view=None, *, acts: bool = False):
    """Size limit, then the token/HMAC checks, before the view reads anything.

    A route that ``acts`` (starts calls, reads Vapi, tests Slack) never runs without a
    secret configured. The client whose own secret passed is ``g.auth_client``.
    """
    if view is None:
        return partial(authenticated, acts=acts)

    @wraps(view)
    def checked(*args, **kwargs):
        settings = current_app.config["SETTINGS"]
        if acts and not auth.configured(settings):
            return jsonify(error="auth_not_configured", message=(
                f"Set WEBHOOK_TOKEN or VAPI_WEBHOOK_HMAC_SECRET (or a client's webhook_token"
                f" or hmac_secret) to enable {request.path}.")), 503
        if (request.content_length or 0) > settings.max_body_bytes:
            abort(413)  # the declared length alone says so
        try:
            passed = auth.verify(settings, request.headers, request.args, _body)
        except auth.Refused as exc:
            log.warning("[WEBHOOK] Unauthorized %s requestId=%s check=%s", request.path,
                        g.request_id, exc)
            return jsonify(error="unauthorized"), 401
        if passed.signature and not get_state().first_use_of_signature(
                passed.signature, settings.hmac_tolerance):
            log.warning("[WEBHOOK] Unauthorized %s requestId=%s check=hmac: replayed",
                        request.path, g.request_id)
            return jsonify(error="replayed"), 401
        _body()
        g.auth_client = passed.client
        return view(*args, **kwargs)

    return checked


def _body() -> bytes:
    """The body, read once: MAX_CONTENT_LENGTH answers 413 on a declared length; a chunked
    body has none to check first, so werkzeug stops reading at the limit instead."""
    body = request.get_data(cache=True)
    limit = current_app.config["SETTINGS"].max_body_bytes
    if request.content_length is None and len(body) >= limit:
        abort(413)
    return body


def wrong_client(owner: str, named: str):
    """A client's own secret used for another client: refused, nothing stored."""
    log.warning("[WEBHOOK] Wrong client %s requestId=%s authenticated=%s named=%s", request.path,
                g.request_id, owner, named)
    return jsonify(error="wrong_client"), 403


def _owned(ctx: Context) -> Context:
    """The context of a request: the client whose own secret let it in, if one did."""
    return dataclasses.replace(ctx, client=g.get("auth_client"))


@bp.post("/vapi/webhook")
@authenticated
def vapi_webhook():
    body = request.get_data(cache=True)
    message = messages.peek(body)  # the type and whose call it is, nothing else yet
    g.message_type = logs.cut(message["type"])  # caller-chosen: cut for the log lines
    owner = g.auth_client
    try:
        if owner is not None:  # whatever the type: nothing runs for another client
            _check_owner(message, current_app.config["SETTINGS"].clients, owner)
        if not handlers.acts_on(message["type"]):
            # Chatter (conversation-update, speech-update...): one parse, a look-up, the answer.
            log.debug("[WEBHOOK] Ignored message type=%s", g.message_type)
            return jsonify(status="ignored")
        message = messages.parse(body)
        g.call_id = messages.loggable_call_id(message)
        return jsonify(handlers.dispatch(message, _owned(current_context())))
    except WrongClient as exc:
        return wrong_client(exc.owner.name, exc.named.name)


def _check_owner(message: dict[str, Any], clients: ClientDirectory, owner: Client) -> None:
    call = message.get("call") if isinstance(message.get("call"), dict) else {}
    assistant, phone = (message.get(name) if isinstance(message.get(name), dict) else {}
                        for name in ("assistant", "phoneNumber"))
    clients.check_owner(owner, (call.get("assistantId"), assistant.get("id")),
                        (call.get("phoneNumberId"), phone.get("id")))


@bp.post("/vapi/pull-metadata")
@authenticated(acts=True)
def pull_metadata():
    """Read a call from Vapi and run the pipeline for it; the claims make a re-run safe."""
    body = messages.load_json(request.get_data(cache=True))
    call_id = body.get("callId") if isinstance(body, dict) else None
    try:
        g.call_id = check_url_id(call_id, "callId")
    except ValueError as exc:
        raise messages.InvalidPayload({"callId": [str(exc)]}) from None
    ctx = _owned(current_context())
    if ctx.integrations.vapi is None:
        return jsonify(error="vapi_api_not_configured",
                       message="Set VAPI_API_KEY to read calls from Vapi."), 503
    try:
        replayed = pipeline.replay(call_id, ctx)
    except WrongClient as exc:
        return wrong_client(exc.owner.name, exc.named.name)
    except DeliveryError as exc:
        log.warning("[METADATA_PULL] Vapi unavailable callId=%s: %s", call_id, exc)
        return jsonify(error="vapi_unavailable", message=str(exc)), 502
    if replayed is None:
        return jsonify(error="call_not_found", callId=call_id), 404
    client, delivery = replayed
    return jsonify(callId=call_id, client=client.name, delivery=delivery)


@bp.post("/slack/test")
@authenticated(acts=True)
def slack_test():
    """Slack ``auth.test`` with a client's bot token (``?client=<name>``, else the default)."""
    settings = current_app.config["SETTINGS"]
    owner = g.auth_client
    name = request.args.get("client") or (owner or settings.clients.default).name
    if owner is not None and name != owner.name:
        return wrong_client(owner.name, name)
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
