"""CRM tools (GoHighLevel): the original five, and ``lookup_contact``.

Each client works one of two ways, chosen by its configuration:

- **workflow mode**, when it has incoming-webhook URLs (``ghl_incoming_webhook_urls``):
  as the original service, the tool's arguments plus ``action`` (the tool's name) and
  ``timestamp`` are POSTed as JSON to a GoHighLevel workflow that branches on ``{{action}}``;
- **API mode**, when it has a GoHighLevel token and location: the contact is found (or
  created; the caller's once per call, ``contacts.py``), then the note, tag, SMS or
  opportunity stage goes through the API v2.

``lookup_contact`` reads the CRM, so it needs the API in either mode. A missing ``phone``
(and ``email``) is the caller's number. Every phone goes out in E.164, read with the
client's ``default_country``; one that cannot be read is an error the assistant can say,
and nothing is sent. Arguments (phones, emails, SMS bodies) never reach the log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests

from .. import metrics
from ..context import Context
from ..ids import is_url_id
from ..integrations import DeliveryError, http_error, status_error
from ..integrations.ghl import GhlClient
from ..logs import cut, redact
from ..phones import to_e164
from ..vapi.schemas import parse_time
from . import ToolError, tool
from .contacts import Contact, display_name, ghl_id, gone, name_of, read_with_notes, with_contact
from .opportunities import put_in_stage_for_call

log = logging.getLogger(__name__)

WORKFLOW = "ghl-workflow"  # DeliveryError service name for incoming-webhook POSTs
CONVERSATIONS_VERSION = "2021-04-15"  # conversations (SMS) want this Version (reference A1)
TEMPLATES = ("booking", "deposit")
NOT_SET_UP = "The CRM is not set up for this line."
SMS_REFUSED = "The text message was not sent: the CRM refused it."
BAD_PHONE = "That phone number does not look right. Please check it."
_PHONE = re.compile(r"\+?[0-9 ().-]+")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

# What each tool does, for the spoken errors ("I need ... to <purpose>.") and workflows.
PURPOSE = {
    "send_sms": "send a text message",
    "upsert_contact": "save the contact",
    "add_tag": "add a tag",
    "add_note": "add a note",
    "update_stage": "update the pipeline stage",
    "lookup_contact": "look up the contact",
}
WORKFLOW_FOR = {
    "send_sms": "text messages",
    "upsert_contact": "saving contacts",
    "add_tag": "adding tags",
    "add_note": "adding notes",
    "update_stage": "pipeline stages",
}


# The tools
@tool("send_sms")
def send_sms(arguments: dict[str, Any], ctx: Context) -> str:
    urls, ghl = _mode(ctx)
    args = _Arguments("send_sms", arguments, ctx)
    phone = args.phone(default=ctx.customer_number)
    if phone is None:
        raise ToolError(f"I need the phone number (phone) to {PURPOSE['send_sms']}.")
    body = args.required("body", "the message text")
    call_id = args.id("callId")  # only a workflow reads it, but a bad one is refused in both modes
    first_name = args.text("firstName")
    template = args.text("template")
    if template is not None and template.lower() not in TEMPLATES:
        raise ToolError("The template must be booking or deposit, or left out.")
    template = template.lower() if template else None
    if urls is not None:
        url = (urls.get(template) if template else None) or urls.get("default")
        if not url:
            kind = f"{template} text messages" if template else WORKFLOW_FOR["send_sms"]
            raise ToolError(f"No GoHighLevel workflow is set up for {kind}.")
        _post_workflow(ctx, url, "send_sms", {
            "phone": phone, "firstName": first_name, "template": template,
            "callId": call_id or ctx.call_id, "body": body})
        return "The text message is on its way."
    # The spec's SendMessageBodyDto (2026-05) has "required": ["type", "subType", "contactId",
    # "status"], but subType is typed "object" with the example "Email", and status takes the
    # enum "delivered|failed|pending|read" of the send answer and of PUT .../status: what
    # became of a message, not something a sender claims. Every earlier revision required
    # only "type" and "contactId": we send those and the text. A refusal is logged and said.
    def send(contact: Contact) -> None:
        try:
            ghl.request("POST", "/conversations/messages", version=CONVERSATIONS_VERSION,
                        json={"type": "SMS", "contactId": contact.id, "message": body})
        except DeliveryError as exc:
            if exc.retryable or (contact.kept and gone(exc)):
                raise  # a passing outage (Vapi's repeat tries again), or a kept id to replace
            log.warning("[TOOLS] send_sms refused by GoHighLevel: %s requestId=%s callId=%s",
                        redact(cut(str(exc), 300)), ctx.request_id, ctx.call_id)
            raise ToolError(SMS_REFUSED) from None

    with_contact(ctx, ghl, phone, lambda: _contact(ghl, ctx, phone=phone,
                                                   names={"firstName": first_name}), send)
    _done(ctx, "send_sms", "api")
    return "The text message was sent."


@tool("upsert_contact")
def upsert_contact(arguments: dict[str, Any], ctx: Context) -> str:
    urls, ghl = _mode(ctx)
    args = _Arguments("upsert_contact", arguments, ctx)
    phone, email = args.phone_or_email()
    fields = {"phone": phone, "email": email, "firstName": args.text("firstName"),
              "lastName": args.text("lastName"), "name": args.text("name")}
    if urls is not None:
        _post_workflow(ctx, _default_url(urls, "upsert_contact"), "upsert_contact", fields)
        return "The contact details were sent to the CRM."
    ghl_id(ghl.upsert_contact(fields))
    _done(ctx, "upsert_contact", "api")
    return "The contact is saved."


@tool("add_tag")
def add_tag(arguments: dict[str, Any], ctx: Context) -> str:
    return _write_to_contact(arguments, ctx, "add_tag", "tag", "the tag",
                             lambda ghl, contact_id, tag: ghl.add_tags(contact_id, [tag]))


@tool("add_note")
def add_note(arguments: dict[str, Any], ctx: Context) -> str:
    return _write_to_contact(arguments, ctx, "add_note", "note", "the note text",
                             lambda ghl, contact_id, note: ghl.add_note(contact_id, note))


def _write_to_contact(arguments: dict[str, Any], ctx: Context, name: str, field: str,
                      what: str, write) -> str:
    """add_tag / add_note: one value for the caller's contact, by workflow or by API."""
    urls, ghl = _mode(ctx)
    args = _Arguments(name, arguments, ctx)
    value = args.required(field, what)
    phone, email = args.phone_or_email()
    if urls is not None:
        _post_workflow(ctx, _default_url(urls, name), name,
                       {"phone": phone, "email": email, field: value})
        return f"The {field} was sent to the CRM."
    with_contact(ctx, ghl, phone, lambda: _contact(ghl, ctx, phone=phone, email=email),
                 lambda contact: write(ghl, contact.id, value))
    _done(ctx, name, "api")
    return f"The {field} is added."


_STAGE_SAID = {"created": "A new opportunity was created in that stage.",
               "already": "The opportunity is already in that stage.",
               "moved": "The opportunity was moved to that stage."}


@tool("update_stage")
def update_stage(arguments: dict[str, Any], ctx: Context) -> str:
    urls, ghl = _mode(ctx)
    args = _Arguments("update_stage", arguments, ctx)
    pipeline_id = args.required_id("pipelineId", "the pipeline id")
    stage_id = args.required_id("stageId", "the stage id")
    note = args.text("note")
    phone, email = args.phone_or_email()
    if urls is not None:
        _post_workflow(ctx, _default_url(urls, "update_stage"), "update_stage", {
            "phone": phone, "email": email, "pipelineId": pipeline_id, "stageId": stage_id,
            "note": note})
        return "The stage change was sent to the CRM."

    def move(contact: Contact) -> str:
        said = _STAGE_SAID[put_in_stage_for_call(ctx, ghl, contact.id, pipeline_id, stage_id,
                                                 lambda: name_of(ghl, contact) or phone or email)]
        if note:
            ghl.add_note(contact.id, note)
            said += " The note is added."
        return said

    said = with_contact(ctx, ghl, phone, lambda: _contact(ghl, ctx, phone=phone, email=email),
                        move)
    _done(ctx, "update_stage", "api")
    return said


@tool("lookup_contact")
def lookup_contact(arguments: dict[str, Any], ctx: Context) -> str | dict[str, Any]:
    client = ctx.client
    ghl = ctx.integrations.ghl(client) if client is not None and client.has_ghl else None
    if ghl is None:
        raise ToolError("Looking up contacts is not set up for this line.")
    args = _Arguments("lookup_contact", arguments, ctx)
    phone, email = args.phone_or_email()
    answer = with_contact(ctx, ghl, phone, lambda: _find(ghl, phone=phone, email=email),
                          lambda found: read_with_notes(ghl, found))
    if answer is None:
        return f"No contact found for that {'number' if phone else 'email'}."
    contact, notes = answer
    dates = [parse_time(n.get("dateAdded")) for n in notes if isinstance(n, dict)]
    last = max((d for d in dates if d is not None), default=None)
    tags = contact.get("tags")
    _done(ctx, "lookup_contact", "api")
    return {
        "found": True,
        "name": display_name(contact),
        "firstName": contact.get("firstName") or None,
        "email": contact.get("email") or None,
        "tags": [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else [],
        "lastNoteDate": last.astimezone(_zone(ctx)).date().isoformat() if last else None,
    }


# Arguments
class _Arguments:
    """Reads one tool's arguments; a problem is a ``ToolError`` the assistant can say."""

    def __init__(self, name: str, arguments: dict[str, Any], ctx: Context):
        self.name = name
        self.arguments = arguments
        self.ctx = ctx

    def text(self, field: str) -> str | None:
        value = self.arguments.get(field)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ToolError(f"The {field} must be text.")
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # 4155550123.0 is a number written as a float
        return str(value).strip() or None

    def required(self, field: str, label: str) -> str:
        value = self.text(field)
        if value is None:
            raise ToolError(f"I need {label} ({field}) to {PURPOSE[self.name]}.")
        return value

    def id(self, field: str) -> str | None:
        """An id that may reach a CRM URL or query: ``ids.is_url_id``, else a ``ToolError``."""
        value = self.text(field)
        if value is not None and not is_url_id(value):
            raise ToolError(f"The {field} is not a valid id.")
        return value

    def required_id(self, field: str, label: str) -> str:
        self.required(field, label)
        return self.id(field)  # type: ignore[return-value]

    def phone(self, *, default: str | None = None) -> str | None:
        """The ``phone`` given, in E.164; else ``default`` (the caller's number) if it is one."""
        given = self.text("phone")
        if given is None:
            return self._e164(default) if default else None
        number = self._e164(given)
        if number is None:
            raise ToolError(BAD_PHONE)
        return number

    def _e164(self, text: str) -> str | None:
        country = self.ctx.client.default_country if self.ctx.client else "US"
        return to_e164(text, country) if _PHONE.fullmatch(text.strip()) else None

    def phone_or_email(self) -> tuple[str | None, str | None]:
        """Either or both; with neither, the caller's number."""
        email = self.text("email")
        if email is not None and not _EMAIL.fullmatch(email):
            raise ToolError("That email address does not look right. Please check it.")
        phone = self.phone(default=None if email else self.ctx.customer_number)
        if phone is None and email is None:
            raise ToolError("I need the caller's phone number or email (phone or email) to"
                            f" {PURPOSE[self.name]}.")
        return phone, email


# Workflow mode
def _mode(ctx: Context) -> tuple[Mapping[str, str] | None, GhlClient | None]:
    """(workflow URLs, None) or (None, API client): how this line reaches its CRM."""
    client = ctx.client
    if client is None:
        raise ToolError(NOT_SET_UP)
    urls = {kind: url for kind, url in client.ghl_incoming_webhook_urls.items() if url}
    if urls:
        return urls, None
    ghl = ctx.integrations.ghl(client) if client.has_ghl else None
    if ghl is None:
        raise ToolError(NOT_SET_UP)
    return None, ghl


def _default_url(urls: Mapping[str, str], name: str) -> str:
    url = urls.get("default")
    if not url:
        raise ToolError(f"No GoHighLevel workflow is set up for {WORKFLOW_FOR[name]}.")
    return url


def _post_workflow(ctx: Context, url: str, action: str, fields: dict[str, Any]) -> None:
    """The original's payload: the arguments given (None left out), ``action``, ``timestamp``."""
    body = {key: value for key, value in fields.items() if value is not None}
    body |= {"action": action, "timestamp": _now()}
    try:  # one attempt: a workflow run twice is worse than a retry the assistant asks for
        with metrics.outside("ghl"):
            response = requests.post(url, json=body, timeout=ctx.settings.http_timeout)
    except requests.RequestException as exc:
        raise http_error(WORKFLOW, exc) from None
    if not response.ok:
        raise status_error(WORKFLOW, response)
    _done(ctx, action, "workflow")


def _now() -> str:
    """ISO now as JavaScript writes it (the original's ``new Date().toISOString()``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# API mode
def _find(ghl: GhlClient, *, phone: str | None, email: str | None) -> dict[str, Any] | None:
    if phone:
        return ghl.find_contact_by_phone(phone)
    body = ghl.request("GET", "/contacts/search/duplicate",
                       params={"locationId": ghl.location_id, "email": email}, not_found_ok=True)
    contact = body.get("contact")
    return contact if isinstance(contact, dict) and contact.get("id") else None


def _contact(ghl: GhlClient, ctx: Context, *, phone: str | None, email: str | None = None,
             names: dict[str, str | None] | None = None) -> dict[str, Any]:
    """The contact with that phone (else email); created if unknown and creating is allowed."""
    found = _find(ghl, phone=phone, email=email)
    if found is not None:
        return found
    if not ctx.settings.ghl_create_contacts:
        raise ToolError("There is no contact with that phone number or email in the CRM.")
    return ghl.upsert_contact({"phone": phone, "email": email, **(names or {})})


def _zone(ctx: Context) -> ZoneInfo:
    try:
        return ZoneInfo(ctx.client.timezone if ctx.client else "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _done(ctx: Context, name: str, mode: str) -> None:
    log.info("[TOOLS] %s done via %s client=%s requestId=%s callId=%s", name, mode,
             ctx.client.name if ctx.client else None, ctx.request_id, ctx.call_id)
