"""A stateful GoHighLevel API v2 fake: contacts, notes, tags, custom fields, with the headers
and the token's scopes checked."""

from __future__ import annotations

import itertools
import re
from typing import Any

from werkzeug import Request, Response

from tests.contract.ghl import CONTRACT, scopes

from .http import Fake, json_response

# A scope in ``refused_scopes`` (as the spec's ``security`` names it) gets the 401
# GoHighLevel gives a token without it (reference A6).
NOT_AUTHORIZED = {"statusCode": 401, "message": "The token is not authorized for this scope.",
                  "error": "Unauthorized"}


class FakeGhl(Fake):
    contract = CONTRACT  # every request and answer checked against GoHighLevel's OpenAPI files

    def __init__(self):
        super().__init__()
        self.contacts: dict[str, dict[str, Any]] = {}
        self.notes: list[dict[str, Any]] = []  # {"contact_id", "body", "token"}
        self.tags: list[dict[str, Any]] = []  # {"contact_id", "tags", "token"}
        self.upserts: list[dict[str, Any]] = []
        self.custom_fields: list[dict[str, Any]] = []  # as GET .../customFields answers them
        self.refused_scopes: set[str] = set()
        self.gone: dict[str, int] = {}  # removed contacts: their id is answered with this status
        self._ids = itertools.count(1)
        self.route("/contacts/search/duplicate", "GET", self._duplicate)
        self.route("/contacts/upsert", "POST", self._upsert)
        self.route(re.compile(r"/contacts/[^/]+/notes"), "POST", self._note)
        self.route(re.compile(r"/contacts/[^/]+/tags"), "POST", self._tags)
        self.route(re.compile(r"/locations/[^/]+/customFields$"), "GET", self._custom_fields)
        self.route(re.compile(r"/locations/[^/]+$"), "GET", self._location)

    def add_contact(self, phone: str, location_id: str, **fields) -> str:
        contact_id = f"contact-{next(self._ids)}"
        self.contacts[contact_id] = {"id": contact_id, "phone": phone,
                                     "locationId": location_id, **fields}
        return contact_id

    def remove_contact(self, contact_id: str, status: int = 404) -> None:
        """Deleted (or merged away): a request naming its id, in the path or as the body's
        ``contactId``, gets ``status`` and GoHighLevel's "Contact with id ... not found"."""
        del self.contacts[contact_id]
        self.gone[contact_id] = status

    def add_custom_field(self, location_id: str, field_key: str, field_id: str,
                         model: str = "contact", data_type: str = "TEXT",
                         options: list[str] | None = None) -> None:
        """A custom field (``field_key`` as GoHighLevel writes it: ``contact.lead_source``);
        ``options`` are a picklist's (SINGLE_OPTIONS, CHECKBOX...)."""
        name = field_key.split(".", 1)[-1]
        self.custom_fields.append({
            "id": field_id, "name": name, "fieldKey": field_key, "placeholder": "",
            "dataType": data_type, "position": len(self.custom_fields), "locationId": location_id,
            "model": model, **({"picklistOptions": options} if options is not None else {})})

    def _checked(self, request: Request, version: str = "2021-07-28") -> Response | None:
        """GoHighLevel's answer to a missing token or the wrong ``Version`` header."""
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return json_response({"statusCode": 401, "message": "Invalid JWT"}, 401)
        if request.headers.get("Version") != version:
            return json_response({"statusCode": 401, "message": "version header is invalid"},
                                 401)
        if self.refused_scopes.intersection(scopes(request)):
            return json_response(NOT_AUTHORIZED, 401)
        in_path = re.match(r"/contacts/([^/]+)", request.path)
        body = request.get_json(silent=True) if request.method in ("POST", "PUT") else None
        named = isinstance(body, dict) and body.get("contactId")
        for contact_id in (in_path and in_path[1], named):
            if contact_id in self.gone:
                return json_response({"statusCode": self.gone[contact_id],
                                      "message": f"Contact with id {contact_id} not found"},
                                     self.gone[contact_id])
        return None

    def _duplicate(self, request: Request) -> Response:
        denied = self._checked(request)
        if denied:
            return denied
        location, number = request.args.get("locationId"), request.args.get("number")
        if not location:
            return json_response({"statusCode": 422, "message": ["locationId is required"]}, 422)
        match = next((c for c in self.contacts.values()
                      if c["phone"] == number and c["locationId"] == location), None)
        return json_response({"contact": match and shown(match), "traceId": "t"})

    def _upsert(self, request: Request) -> Response:
        denied = self._checked(request)
        if denied:
            return denied
        body = request.get_json()
        self.upserts.append(body)
        if "tags" in body or not body.get("locationId"):
            return json_response({"statusCode": 422, "message": ["bad upsert"]}, 422)
        match = next((c for c in self.contacts.values() if c["locationId"] == body["locationId"]
                      and ((body.get("phone") and c["phone"] == body.get("phone"))
                           or (body.get("email") and c.get("email") == body.get("email")))), None)
        if match:
            match.update({k: v for k, v in body.items() if k != "locationId"})
            return json_response({"new": False, "contact": shown(match), "traceId": "t"})
        contact_id = self.add_contact(body.get("phone"), body["locationId"],
                                      **{k: v for k, v in body.items()
                                         if k not in ("phone", "locationId")})
        return json_response({"new": True, "contact": shown(self.contacts[contact_id]),
                              "traceId": "t"})

    def _note(self, request: Request) -> Response:
        denied = self._checked(request)
        if denied:
            return denied
        contact_id = request.path.split("/")[2]
        body = request.get_json()
        if set(body) - {"body", "userId", "title"} or not body.get("body"):
            return json_response({"statusCode": 422, "message": ["bad note"]}, 422)
        note = {"id": f"note-{len(self.notes) + 1}", "contact_id": contact_id,
                "body": body["body"], "token": request.headers["Authorization"][7:]}
        self.notes.append(note)
        return json_response({"note": {"id": note["id"], "body": note["body"],
                                       "contactId": contact_id}}, 201)

    def _tags(self, request: Request) -> Response:
        denied = self._checked(request)
        if denied:
            return denied
        contact_id = request.path.split("/")[2]
        tags = request.get_json().get("tags")
        self.tags.append({"contact_id": contact_id, "tags": tags,
                          "token": request.headers["Authorization"][7:]})
        return json_response({"tags": tags}, 201)

    def _location(self, request: Request) -> Response:
        denied = self._checked(request)
        return denied or json_response({"location": {"id": request.path.split("/")[2]}})

    def _custom_fields(self, request: Request) -> Response:
        denied = self._checked(request)
        if denied:
            return denied
        location, model = request.path.split("/")[2], request.args.get("model", "all")
        if model not in ("contact", "opportunity", "all"):
            return json_response({"statusCode": 422, "message": ["model must be one of the"
                                                                 " following values"]}, 422)
        return json_response({"customFields": [
            f for f in self.custom_fields
            if f["locationId"] == location and model in ("all", f["model"])]})

def shown(contact: dict[str, Any]) -> dict[str, Any]:
    """A contact as GoHighLevel answers it: a field it does not have is absent, never null (the
    spec types ``phone``, ``email``... as non-nullable strings)."""
    return {key: value for key, value in contact.items() if value is not None}
