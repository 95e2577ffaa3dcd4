"""``POST /ghl/outbound-call``: a GoHighLevel workflow starts a Vapi call for a contact.

The contact id travels with the call (``customer.externalId`` and
``assistantOverrides.variableValues``, since ``POST /call`` has no ``metadata``) and is
also kept in the store under the call id, so the call-ended pipeline finds the contact
even when a webhook lacks it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request

from .clients import Client
from .ids import check_url_id
from .integrations import DeliveryError
from .phones import to_e164
from .storage import CallBelongsToAnotherClient, check_id, get_state
from .vapi.messages import InvalidPayload, load_json
from .webhooks import authenticated

log = logging.getLogger(__name__)
bp = Blueprint("outbound", __name__)
WINDOW_SECONDS = 60  # without a requestId, one call per contact per minute
WAIT_FOR_TWIN_SECONDS = 10
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class Refused(Exception):
    def __init__(self, status: int, error: str, message: str):
        super().__init__(message)
        self.status, self.error = status, error


@bp.post("/ghl/outbound-call")
@authenticated(acts=True)
def outbound_call():
    data = _payload()
    try:
        client = _client(data)
        contact_id = _contact_id(data)
        request_id = _request_id(data)
        vapi_request = _vapi_request(data, client, contact_id)
    except Refused as exc:
        log.warning("[OUTBOUND] Refused: %s", exc.error)
        return jsonify(error=exc.error, message=str(exc)), exc.status
    if request.args.get("dry_run") in ("1", "true"):
        return jsonify(dryRun=True, client=client.name, request={
            "method": "POST", "url": f"{current_app.config['SETTINGS'].vapi_api_base_url}/call",
            "body": vapi_request})
    return _start_once(client, contact_id, request_id, vapi_request)


def _start_once(client: Client, contact_id: str, request_id: str | None,
                vapi_request: dict[str, Any]):
    vapi = current_app.extensions["integrations"].vapi
    if vapi is None:
        return jsonify(error="vapi_api_not_configured",
                       message="Set VAPI_API_KEY to start calls."), 503
    state = get_state()
    ids, ttl = ((contact_id, request_id), None) if request_id else ((contact_id,), WINDOW_SECONDS)
    if not state.claim("outbound", *ids, ttl=ttl):
        answer = state.wait_for_answer("outbound", ids, time.monotonic() + WAIT_FOR_TWIN_SECONDS)
        if answer is None:
            return jsonify(error="in_progress", message="A call for this contact is starting."), 409
        return jsonify(callId=answer["callId"], duplicate=True), 200
    try:
        call = vapi.create_call(vapi_request)
    except DeliveryError as exc:
        state.release("outbound", *ids)
        log.warning("[OUTBOUND] Vapi refused or failed client=%s: %s", client.name, exc)
        if exc.status and 400 <= exc.status < 500:
            return jsonify(error="vapi_rejected", message=str(exc)), exc.status
        return jsonify(error="vapi_unavailable", message=str(exc)), 502
    try:
        call_id = check_url_id(call["id"], "Vapi's call id")
    except ValueError as exc:  # Vapi's own ids are UUIDs: this is not the caller's fault
        log.error("[OUTBOUND] Vapi answered with an unusable call id client=%s", client.name)
        return jsonify(error="vapi_unusable_answer", message=str(exc)), 502
    try:
        state.own_call(call_id, client.name)  # a webhook about the call may have come first
    except CallBelongsToAnotherClient as exc:
        log.warning("[OUTBOUND] Call started callId=%s client=%s, already recorded for client"
                    " %s: its webhooks will be refused", call_id, client.name, exc.owner)
    state.remember_call_contact(call_id, {"contactId": contact_id, "client": client.name,
                                          "locationId": client.ghl_location_id})
    state.store_answer("outbound", ids, {"callId": call_id}, ttl=ttl)
    log.info("[OUTBOUND] Call started callId=%s client=%s contactId=%s", call_id, client.name,
             contact_id)
    return jsonify(callId=call_id), 201


def _payload() -> dict[str, Any]:
    """GoHighLevel's contact payload, as JSON or form data, with query-string overrides."""
    if request.mimetype in FORM_TYPES:
        body = request.form.to_dict()
    else:  # JSON whatever the content type says; not JSON is a 400 (errors.invalid_json)
        raw = request.get_data(cache=True)
        body = load_json(raw) if raw.strip() else {}
        if not isinstance(body, dict):
            raise InvalidPayload({"_schema": ["Expected a JSON object or form data."]})
    custom = body.get("customData") if isinstance(body.get("customData"), dict) else {}
    return {**body, **custom, **request.args.to_dict()}


def _text(data: dict[str, Any], *names: str) -> str | None:
    for name in names:
        value = data.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _client(data: dict[str, Any]) -> Client:
    clients = current_app.config["SETTINGS"].clients
    location = data.get("location") if isinstance(data.get("location"), dict) else {}
    location_id = _text(location, "id") or _text(data, "location_id", "locationId")
    name = _text(data, "client")
    by_location = clients.by_location(location_id) if location_id else None
    by_name = clients.by_name(name) if name else None
    owner = g.auth_client  # a client's own secret starts calls for that client only
    if owner is not None:
        named = [c for given, c in ((location_id, by_location), (name, by_name)) if given]
        if any(c is None or c.name != owner.name for c in named):
            raise Refused(403, "wrong_client", "This secret starts calls for its own client only.")
        return owner
    client = by_location or by_name
    if client is None and (location_id or name):
        raise Refused(404, "unknown_client", "No client has that location id or name.")
    return client or clients.default


def _contact_id(data: dict[str, Any]) -> str:
    contact_id = _text(data, "contact_id", "contactId", "id")
    if not contact_id:
        raise Refused(400, "missing_contact_id", "The contact id (contact_id) is missing.")
    try:
        return check_url_id(contact_id, "contact_id")
    except ValueError as exc:
        raise Refused(400, "invalid_contact_id", str(exc)) from None


def _request_id(data: dict[str, Any]) -> str | None:
    """The workflow run's id, if given: one call per contact and requestId (a storage key)."""
    request_id = _text(data, "requestId")
    try:
        return check_id(request_id, "requestId") if request_id else None
    except ValueError as exc:
        raise Refused(400, "invalid_request_id", str(exc)) from None


def _phone(data: dict[str, Any], client: Client) -> str:
    raw = _text(data, "phone", "phone_number", "phoneNumber")
    if not raw:
        raise Refused(400, "missing_phone", "The contact has no phone number.")
    number = to_e164(raw, client.default_country)
    if number is None:
        country = client.default_country
        raise Refused(400, "invalid_phone",
                      f"The phone number is not a valid number (default country {country}).")
    return number


def _vapi_request(data: dict[str, Any], client: Client, contact_id: str) -> dict[str, Any]:
    assistant_id = _text(data, "assistantId") or client.vapi_assistant_id
    phone_number_id = _text(data, "phoneNumberId") or client.vapi_phone_number_id
    if not assistant_id or not phone_number_id:
        missing = "assistantId" if not assistant_id else "phoneNumberId"
        raise Refused(400, f"missing_{missing}",
                      f"No {missing}: give one, or set it on client {client.name}.")
    first, last = _text(data, "first_name", "firstName"), _text(data, "last_name", "lastName")
    name = _text(data, "full_name", "name") or " ".join(filter(None, [first, last])) or None
    email = _text(data, "email")
    customer = {"number": _phone(data, client), "name": name, "email": email,
                "externalId": contact_id}
    variables = {"ghlContactId": contact_id, "ghlLocationId": client.ghl_location_id,
                 "firstName": first, "lastName": last, "email": email}
    return {"assistantId": assistant_id, "phoneNumberId": phone_number_id,
            "customer": _present(customer),
            "assistantOverrides": {"variableValues": _present(variables)}}


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}
