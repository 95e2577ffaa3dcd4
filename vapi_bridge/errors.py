"""JSON answers for every error: bad input is a 4xx, our own faults a logged 500/503."""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException

from .storage import CallBelongsToAnotherClient, StorageError
from .vapi.messages import InvalidJson, InvalidPayload

log = logging.getLogger(__name__)


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(InvalidJson, invalid_json)
    app.register_error_handler(InvalidPayload, invalid_payload)
    app.register_error_handler(CallBelongsToAnotherClient, call_of_another_client)
    app.register_error_handler(StorageError, storage_unavailable)
    app.register_error_handler(Exception, unexpected_error)


def http_error(exc: HTTPException):
    body = {"error": _slug(exc.name), "message": exc.description}
    if exc.code == 405:
        body["allowed"] = sorted(exc.valid_methods or [])  # type: ignore[attr-defined]
    response = _json(body, exc.code or 500)
    if exc.code == 405:
        response.headers["Allow"] = ", ".join(body["allowed"])
    return response


def invalid_json(exc: InvalidJson):
    log.warning("[WEBHOOK] Invalid JSON requestId=%s: %s", _request_id(), exc)
    return _json({"error": "invalid_json", "message": f"The body is not JSON: {exc}"}, 400)


def invalid_payload(exc: InvalidPayload):
    log.warning("[WEBHOOK] Invalid payload requestId=%s type=%s callId=%s fields=%s",
                _request_id(), g.get("message_type"), g.get("call_id"), sorted(exc.details))
    return _json({"error": "invalid_payload", "details": exc.details}, 400)


def call_of_another_client(exc: CallBelongsToAnotherClient):
    log.warning("[WEBHOOK] Refused requestId=%s type=%s callId=%s client=%s: the call belongs"
                " to client %s", _request_id(), g.get("message_type"), exc.call_id, exc.client,
                exc.owner)
    return _json({"error": "call_belongs_to_another_client"}, 409)


def storage_unavailable(exc: StorageError):
    log.error("[STATE_STORAGE] Store unavailable on %s %s requestId=%s type=%s callId=%s: %s",
              request.method, request.path, _request_id(), g.get("message_type"),
              g.get("call_id"), exc)
    return _json({"error": "storage_unavailable", "requestId": _request_id()}, 503)


def unexpected_error(exc: Exception):
    log.exception("Unhandled error on %s %s requestId=%s type=%s callId=%s", request.method,
                  request.path, _request_id(), g.get("message_type"), g.get("call_id"))
    return _json({"error": "internal_error", "requestId": _request_id()}, 500)


def _json(body: dict, status: int):
    response = jsonify(body)
    response.status_code = status
    return response


def _request_id() -> str | None:
    return g.get("request_id")


def _slug(name: str) -> str:
    return name.lower().replace(" ", "_").replace("'", "")
