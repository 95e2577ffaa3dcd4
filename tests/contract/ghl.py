"""GoHighLevel's published OpenAPI files as a checker for the requests the tests' fakes receive.

Each request that reaches a GoHighLevel fake is validated with openapi-core against its operation:
the path and method exist, the ``Version`` header is one of the operation's enum, required query
parameters and body fields are present with the right types. Each answer the fake gives is
validated against the operation's response schema for that status, where the spec documents one.
Violations go to the ledger (the conftest fails the test); tests/contract/exceptions.py lists the
only exemptions.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.templating.responses.exceptions import ResponseFinderError
from werkzeug import Request, Response

from . import ledger

SPEC_DIR = Path(__file__).parent / "ghl_openapi"
BASE_URL = "https://services.leadconnectorhq.com"  # the spec's only server
APPS = ("contacts", "conversations", "opportunities", "calendars", "locations")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_REQUIRED = re.compile(r"'(.+)' is a required property")


@cache
def spec(app: str) -> OpenAPI:
    """One app's file, loaded from its path so ``../common/common-schemas.json`` refs resolve.
    None of the five files passes openapi-spec-validator (http security schemes with ``name``
    and ``in``, ``"type": "any"`` in conversations' search, an anyOf beside a parameter's
    schema...), none of it in what we check, so the whole-file check is off."""
    return OpenAPI.from_file_path(str(SPEC_DIR / "apps" / f"{app}.json"),
                                  config=Config(spec_validator_cls=None))


class _AtGhl(WerkzeugOpenAPIRequest):
    """The fake's request as if sent to the spec's server: only path, method, headers, query
    and body are compared."""

    @property
    def host_url(self) -> str:
        return BASE_URL


@cache
def _document(app: str) -> dict:
    return json.loads((SPEC_DIR / "apps" / f"{app}.json").read_text(encoding="utf-8"))


def scopes(request: Request) -> list[str]:
    """The scopes the spec's ``security`` gives the request's operation (none if unknown)."""
    name, api = operation(request)
    if api is None:
        return []
    method, template = name.split(" ", 1)
    app = request.path.strip("/").split("/")[0]
    security = _document(app)["paths"][template][method.lower()].get("security") or []
    return [scope for requirement in security for names in requirement.values()
            for scope in names]


def operation(request: Request) -> tuple[str, OpenAPI | None]:
    """("POST /contacts/{contactId}/notes", its app's spec), or (method and raw path, None)
    when no vendored file has that operation."""
    app = request.path.strip("/").split("/")[0]
    if app in APPS:
        try:
            found = APICallPathFinder(spec(app).spec).find(request.method.lower(),
                                                           BASE_URL + request.path)
        except PathError:
            pass
        else:
            return f"{request.method} {found.path_result.pattern}", spec(app)
    return f"{request.method} {request.path}", None


class GhlContract:
    """Plugged into the GoHighLevel fakes (tests/fakes/http.py calls these two methods)."""

    def check_request(self, request: Request) -> None:
        name, api = operation(request)
        if api is None:
            ledger.violation(name, "*", "no such operation in GoHighLevel's OpenAPI files")
            return
        ledger.count(ledger.requests, name)
        for error in api.iter_request_errors(_AtGhl(request)):
            for field, message in _fields(error):
                ledger.violation(name, field, message)

    def check_response(self, request: Request, response: Response) -> None:
        name, api = operation(request)
        if api is None:
            return
        errors = list(api.iter_response_errors(_AtGhl(request), WerkzeugOpenAPIResponse(response)))
        if any(isinstance(e, ResponseFinderError) for e in errors):
            return  # a status the spec does not document (scripted 429/500): nothing to compare
        if _has_schema(api, name, response.status_code):
            ledger.count(ledger.answers, name)
        for error in errors:
            for field, message in _fields(error):
                ledger.violation(name, f"answer {response.status_code} {field}", message)


def _fields(error: Exception) -> list[tuple[str, str]]:
    """(field, message) pairs: ``header.Version``, ``query.locationId``, ``body.tags[]``..."""
    parameter = getattr(error, "name", None)
    if parameter is not None and hasattr(error, "location"):
        cause = error.__cause__ or error
        return [(f"{error.location}.{parameter}", f"{error} ({cause})")]
    schema_errors = getattr(error.__cause__, "schema_errors", None)
    if schema_errors is None:
        return [(type(error).__name__, str(error))]
    fields = []
    for schema_error in schema_errors:
        where = "body" + "".join(_step(p) for p in schema_error.absolute_path)
        missing = _REQUIRED.fullmatch(schema_error.message)
        if schema_error.validator == "required" and missing:
            where += f".{missing.group(1)}"
        fields.append((where, schema_error.message))
    return fields


def _has_schema(api: OpenAPI, name: str, status: int) -> bool:
    """Whether the spec gives a body schema for this answer (the duplicate search has none)."""
    method, path = name.split(" ", 1)
    responses = api.spec["paths"][path][method.lower()]["responses"]
    answer = responses.get(str(status)) or responses.get("default") or {}
    return "content" in answer


def _step(key: str | int) -> str:
    """One step of a field's path; list indexes and date keys (free slots) as their kind."""
    if isinstance(key, int):
        return "[]"
    return ".{date}" if _DATE.fullmatch(key) else f".{key}"


CONTRACT = GhlContract()
