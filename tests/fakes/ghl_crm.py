"""The GoHighLevel fake, plus what the CRM tools and steps use: SMS, opportunities and pipelines,
reading and updating contacts, reading notes, search by email, and incoming-webhook (workflow)
URLs that record their bodies."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug import Request, Response

from .ghl import FakeGhl, shown
from .http import json_response

CONVERSATIONS_VERSION = "2021-04-15"
OPPORTUNITY_FIELDS = {"pipelineId", "locationId", "name", "status", "contactId",
                      "pipelineStageId", "monetaryValue", "assignedTo", "customFields", "source"}
OPPORTUNITY_UPDATE_FIELDS = OPPORTUNITY_FIELDS - {"locationId", "contactId"}
STATUSES = ("open", "won", "lost", "abandoned")
SEEDED_NOTE_DATE = "2026-01-05T15:30:00.000Z"
CLOCK_START = datetime(2026, 1, 1, tzinfo=UTC)  # the fake's clock: one minute per tick


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeGhlCrm(FakeGhl):
    def __init__(self):
        super().__init__()
        self.messages: list[dict[str, Any]] = []  # {"contact_id", "type", "message", "token"}
        self.opportunities: dict[str, dict[str, Any]] = {}
        self.hooks: list[tuple[str, dict[str, Any]]] = []  # (kind, JSON body)
        self.contact_updates: list[dict[str, Any]] = []  # {"contact_id", "body"} per PUT
        self.field_values: dict[str, dict[str, Any]] = {}  # contact id -> {field id: value}
        self.pipelines: list[dict[str, Any]] = []  # as GET /opportunities/pipelines answers
        self._opportunity_ids = itertools.count(1)
        self._ticks = itertools.count(1)
        # GET /opportunities/search: "newest" or "oldest" created first (the spec documents
        # no default order), and the answer to POST /conversations/messages when refusing.
        self.opportunity_order = "newest"
        self.message_refusal: tuple[int, dict[str, Any]] | None = None
        self.route("/conversations/messages", "POST", self._message)
        self.route("/opportunities/search", "GET", self._search_opportunities)
        self.route("/opportunities/", "POST", self._create_opportunity)
        self.route(re.compile(r"/opportunities/[^/]+$"), "PUT", self._update_opportunity)
        self.route(re.compile(r"/contacts/[^/]+/notes$"), "GET", self._list_notes)
        self.route(re.compile(r"/contacts/(?!search$)[^/]+$"), "GET", self._contact)
        self.route(re.compile(r"/contacts/[^/]+$"), "PUT", self._update_contact)
        self.route("/opportunities/pipelines", "GET", self._pipelines)
        self.route(re.compile(r"/hooks/[a-z]+$"), "POST", self._hook)

    def reset(self) -> None:
        """Forget all state and scripted failures: one server can serve many tests."""
        with self.lock:
            self.requests.clear()
            self._failures.clear()
            self.delay = 0.0
            self.most_in_flight = 0
            for collection in (self.contacts, self.notes, self.tags, self.upserts, self.messages,
                               self.opportunities, self.hooks, self.custom_fields,
                               self.refused_scopes, self.contact_updates, self.field_values,
                               self.pipelines, self.gone):
                collection.clear()
            self._ids = itertools.count(1)
            self._opportunity_ids = itertools.count(1)
            self._ticks = itertools.count(1)
            self.opportunity_order = "newest"
            self.message_refusal = None

    # Seeding and reading
    def hook_url(self, kind: str) -> str:
        return f"{self.url}/hooks/{kind}"

    def add_opportunity(self, contact_id: str, pipeline_id: str, stage_id: str,
                        status: str = "open", location_id: str = "loc-default",
                        updated_minutes: int | None = None) -> str:
        """Created now on the fake's clock; ``updated_minutes`` after ``CLOCK_START`` if given."""
        opportunity_id = f"opp-{next(self._opportunity_ids)}"
        created = self._tick()
        updated = (CLOCK_START + timedelta(minutes=updated_minutes)
                   if updated_minutes is not None else created)
        self.opportunities[opportunity_id] = {
            "id": opportunity_id, "name": "seeded", "pipelineId": pipeline_id,
            "pipelineStageId": stage_id, "status": status, "contactId": contact_id,
            "locationId": location_id, "createdAt": iso(created), "updatedAt": iso(updated)}
        return opportunity_id

    def add_pipeline(self, pipeline_id: str, stage_ids: list[str],
                     location_id: str = "loc-default") -> None:
        """Stages listed in an order other than their ``position``: readers must sort."""
        stages = [{"id": s, "name": s.title(), "position": i} for i, s in enumerate(stage_ids)]
        self.pipelines.append({"id": pipeline_id, "name": pipeline_id.title(),
                               "stages": stages[1::2] + stages[0::2],
                               "locationId": location_id})

    def _tick(self) -> datetime:
        return CLOCK_START + timedelta(minutes=next(self._ticks))

    def add_seeded_note(self, contact_id: str, body: str, date_added: str) -> None:
        self.notes.append({"id": f"note-{len(self.notes) + 1}", "contact_id": contact_id,
                           "body": body, "dateAdded": date_added, "token": "seed"})

    # Handlers
    def _duplicate(self, request: Request) -> Response:
        """By ``number``, or by ``email`` when no number is given."""
        denied = self._checked(request)
        if denied:
            return denied
        location = request.args.get("locationId")
        number, email = request.args.get("number"), request.args.get("email")
        if not location:
            return json_response({"statusCode": 422, "message": ["locationId is required"]}, 422)
        match = next((c for c in self.contacts.values() if c["locationId"] == location and (
            (number and c.get("phone") == number)
            or (not number and email and c.get("email") == email))), None)
        return json_response({"contact": match and shown(match), "traceId": "t"})

    def _note(self, request: Request) -> Response:
        response = super()._note(request)
        if response.status_code == 201:
            self.notes[-1]["dateAdded"] = "2026-02-01T09:00:00.000Z"
        return response

    def _list_notes(self, request: Request) -> Response:
        denied = self._checked(request)
        if denied:
            return denied
        contact_id = request.path.split("/")[2]
        return json_response({"notes": [
            {"id": n["id"], "body": n["body"], "contactId": contact_id,
             "dateAdded": n.get("dateAdded", SEEDED_NOTE_DATE)}
            for n in self.notes if n["contact_id"] == contact_id]})

    def _contact(self, request: Request) -> Response:
        denied = self._checked(request)
        if denied:
            return denied
        contact = self.contacts.get(request.path.split("/")[2])
        if contact is None:
            return json_response({"statusCode": 400, "message": "Contact not found"}, 400)
        return json_response({"contact": {"tags": [], **shown(contact)}})

    def _update_contact(self, request: Request) -> Response:
        """``customFields`` items must name an existing field by ``id`` (required by the spec)."""
        denied = self._checked(request)
        if denied:
            return denied
        contact_id, body = request.path.split("/")[2], request.get_json()
        contact = self.contacts.get(contact_id)
        if contact is None:
            return json_response({"statusCode": 400, "message": "Contact not found"}, 400)
        known = {f["id"] for f in self.custom_fields if f["locationId"] == contact["locationId"]}
        items = body.get("customFields") or []
        if any(item.get("id") not in known for item in items):
            return _unprocessable("customFields: no such custom field")
        self.contact_updates.append({"contact_id": contact_id, "body": body})
        values = self.field_values.setdefault(contact_id, {})
        values.update({item["id"]: item.get("field_value") for item in items})
        contact.update({k: v for k, v in body.items() if k != "customFields"})
        return json_response({"succeded": True, "contact": shown(contact)})

    def _pipelines(self, request: Request) -> Response:
        denied = self._checked(request)
        if denied:
            return denied
        location = request.args.get("locationId")
        if not location:
            return _unprocessable("locationId is required")
        return json_response({"pipelines": [p for p in self.pipelines
                                            if p["locationId"] == location]})

    def _message(self, request: Request) -> Response:
        denied = self._checked(request, CONVERSATIONS_VERSION)
        if denied:
            return denied
        if self.message_refusal is not None:
            status, answer = self.message_refusal
            return json_response(answer, status)
        body = request.get_json()
        if body.get("type") != "SMS" or not body.get("message") \
                or body.get("contactId") not in self.contacts:
            return json_response({"statusCode": 422, "message": ["bad message"]}, 422)
        self.messages.append({"contact_id": body["contactId"], "type": body["type"],
                              "message": body["message"],
                              "token": request.headers["Authorization"][7:]})
        return json_response({"conversationId": "conv-1", "messageId": f"msg-{len(self.messages)}",
                              "msg": "Message queued successfully.", "status": "pending"})

    def _search_opportunities(self, request: Request) -> Response:
        """Filters by the spec's snake_case parameters; ``limit`` (default 20, at most 100)
        per page; the next page by ``startAfter`` + ``startAfterId`` from ``meta``."""
        denied = self._checked(request)
        if denied:
            return denied
        args = request.args
        status, limit = args.get("status"), args.get("limit", "20")
        if not args.get("location_id"):
            return _unprocessable("location_id is required")
        if status is not None and status not in (*STATUSES, "all"):
            return _unprocessable("status must be one of open, won, lost, abandoned, all")
        if not limit.isdigit() or not 1 <= int(limit) <= 100:
            return _unprocessable("limit must not be greater than 100")
        found = sorted((o for o in self.opportunities.values()
                        if o["locationId"] == args["location_id"]
                        and (not args.get("contact_id") or o["contactId"] == args["contact_id"])
                        and (not args.get("pipeline_id")
                             or o["pipelineId"] == args["pipeline_id"])
                        and status in (None, "all", o["status"])),
                       key=lambda o: (o["createdAt"], o["id"]),
                       reverse=self.opportunity_order == "newest")
        start = 0
        if "startAfterId" in args or "startAfter" in args:
            after = self.opportunities.get(args.get("startAfterId", ""))
            if after is None or args.get("startAfter") != str(epoch_ms(after["createdAt"])):
                return _unprocessable("startAfter and startAfterId must name the last one read")
            start = found.index(after) + 1
        page = found[start:start + int(limit)]
        # nextPage / prevPage only when there is one: the spec types them as non-null numbers.
        meta: dict[str, Any] = {"total": len(found), "currentPage": start // int(limit) + 1}
        if meta["currentPage"] > 1:
            meta["prevPage"] = meta["currentPage"] - 1
        if page:
            meta |= {"startAfterId": page[-1]["id"], "startAfter": epoch_ms(page[-1]["createdAt"])}
        if start + len(page) < len(found):
            meta["nextPage"] = meta["currentPage"] + 1
        return json_response({"opportunities": page, "meta": meta})

    def _create_opportunity(self, request: Request) -> Response:
        denied = self._checked(request)
        if denied:
            return denied
        body = request.get_json()
        missing = [f for f in ("pipelineId", "locationId", "name", "status", "contactId")
                   if not body.get(f)]
        unknown = sorted(set(body) - OPPORTUNITY_FIELDS)
        if missing or unknown or body["status"] not in STATUSES:
            return json_response({"statusCode": 422, "message": [
                *(f"{f} is required" for f in missing),
                *(f"property {f} should not exist" for f in unknown)]}, 422)
        opportunity_id = f"opp-{next(self._opportunity_ids)}"
        now = iso(self._tick())
        self.opportunities[opportunity_id] = {"id": opportunity_id, **body, "createdAt": now,
                                              "updatedAt": now}
        return json_response({"opportunity": self.opportunities[opportunity_id]}, 201)

    def _update_opportunity(self, request: Request) -> Response:
        denied = self._checked(request)
        if denied:
            return denied
        opportunity = self.opportunities.get(request.path.split("/")[2])
        body = request.get_json()
        if opportunity is None:
            return json_response({"statusCode": 404, "message": "Opportunity not found"}, 404)
        unknown = sorted(set(body) - OPPORTUNITY_UPDATE_FIELDS)
        if unknown:
            return json_response({"statusCode": 422, "message": [
                f"property {f} should not exist" for f in unknown]}, 422)
        opportunity.update(body, updatedAt=iso(self._tick()))
        return json_response({"opportunity": opportunity})

    def _hook(self, request: Request) -> Response:
        """A GoHighLevel workflow's Inbound Webhook: takes any JSON, answers like the real one."""
        self.hooks.append((request.path.split("/")[2], request.get_json()))
        return json_response({"status": "Success: request sent to trigger execution server",
                              "id": f"hook-{len(self.hooks)}"})


def _unprocessable(message: str) -> Response:
    return json_response({"statusCode": 422, "message": [message],
                          "error": "Unprocessable Entity"}, 422)


def epoch_ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
