"""JSON answers for every HTTP error, including our own faults."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)


def http_error(exc: HTTPException):
    code = exc.code or 500
    body = {"error": _slug(exc.name), "message": exc.description}
    if code == 405:
        body["allowed"] = sorted(exc.valid_methods or [])  # type: ignore[attr-defined]
    response = jsonify(body)
    response.status_code = code
    if code == 405:
        response.headers["Allow"] = ", ".join(body["allowed"])
    return response


def unexpected_error(exc: Exception):
    log.exception("Unhandled error on %s %s", request.method, request.path)
    return http_error(InternalServerError())


def _slug(name: str) -> str:
    return name.lower().replace(" ", "_").replace("'", "")
