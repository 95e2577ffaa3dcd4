"""What Vapi is told about each tool: name, description, JSON-Schema parameters.

The one source of truth: ``@tool`` refuses a name not defined here, ``vapi-setup`` creates the
Vapi tools from it, and the documentation's block "Tool definitions to paste into Vapi" is
generated from it (``python -m vapi_bridge.tools.docs``; a test fails when they differ).
Parameters keep to what Vapi's ``JsonSchema`` model knows (no ``minimum``/``maximum``).
Nothing here imports from the package.
"""

from __future__ import annotations

from typing import Any, Protocol

_PHONE = {"type": "string", "description": "Contact phone, E.164 (+14155550123). Leave out to use"
          " the caller's number."}
_EMAIL = {"type": "string", "format": "email", "description": "Contact email, instead of a phone."}
_CALENDAR = {"type": "string", "description": "GoHighLevel calendar id. Default: the line's"
             " calendar."}


def _function(description: str, properties: dict[str, Any],
              required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"description": description, "parameters": {
        "type": "object", "properties": properties, "required": list(required)}}


DEFINITIONS: dict[str, dict[str, Any]] = {
    "lookup_contact": _function(
        "Look the caller up in the CRM before greeting them: name, email, tags, and the date of"
        " the last note.", {"phone": _PHONE, "email": _EMAIL}),
    "check_availability": _function("Free appointment times to offer the caller.", {
        "date": {"type": "string", "description": "First day to look at, YYYY-MM-DD. Default:"
                 " today in the time zone."},
        "days": {"type": "integer", "description": "How many days from date, 1 to 14."
                 " Default 3."},
        "calendarId": _CALENDAR,
        "timezone": {"type": "string", "description": "IANA time zone, e.g. America/New_York."
                     " Default: the line's time zone."}}),
    "book_appointment": _function(
        "Book the caller an appointment at a free time found with check_availability.", {
            "startTime": {"type": "string", "description": "Start, ISO 8601"
                          " (2026-12-03T10:00:00-05:00) or local without offset"
                          " (2026-12-03T10:00)."},
            "endTime": {"type": "string", "description": "Optional end, same format. Default:"
                        " the calendar's slot length."},
            "title": {"type": "string", "description": "Optional appointment title."},
            "name": {"type": "string", "description": "Caller's name, used when a new contact"
                     " is created."},
            "phone": {"type": "string", "description": "Phone to book under, E.164. Default:"
                      " the caller's number."},
            "email": {"type": "string", "description": "Email to book under."},
            "calendarId": _CALENDAR,
            "timezone": {"type": "string", "description": "IANA time zone for times without"
                         " offset. Default: the line's time zone."}},
        ("startTime",)),
    "send_sms": _function("Send a text message (to the caller unless phone is given).", {
        "phone": {"type": "string", "description": "Number to text, E.164. Leave out to text"
                  " the caller."},
        "body": {"type": "string", "description": "The text message to send."},
        "firstName": {"type": "string", "description": "The recipient's first name, if known."},
        "template": {"type": "string", "enum": ["booking", "deposit"],
                     "description": "booking or deposit to use that workflow; leave out"
                     " otherwise."},
        "callId": {"type": "string", "description": "Leave out: defaults to the current call."}},
        ("body",)),
    "upsert_contact": _function("Create or update the caller's contact.", {
        "phone": _PHONE, "email": _EMAIL,
        "firstName": {"type": "string", "description": "First name."},
        "lastName": {"type": "string", "description": "Last name."},
        "name": {"type": "string", "description": "Full name."}}),
    "add_tag": _function("Tag the caller's contact (tags start GoHighLevel workflows).", {
        "tag": {"type": "string", "description": "The tag to add."},
        "phone": _PHONE, "email": _EMAIL}, ("tag",)),
    "add_note": _function("Add a note to the caller's contact.", {
        "note": {"type": "string", "description": "The note text."},
        "phone": _PHONE, "email": _EMAIL}, ("note",)),
    "update_stage": _function(
        "Move the caller's opportunity to a pipeline stage (creates it if there is none).", {
            "pipelineId": {"type": "string", "description": "GoHighLevel pipeline id."},
            "stageId": {"type": "string", "description": "GoHighLevel pipeline stage id."},
            "note": {"type": "string", "description": "Optional note added to the contact."},
            "phone": _PHONE, "email": _EMAIL},
        ("pipelineId", "stageId")),
    "get_call_context": _function(
        "What the bridge knows of this call: status, summary, metadata.",
        {"callId": {"type": "string", "description": "Leave out: the current call."}}),
}
WORKFLOW_DEFAULT = ("upsert_contact", "add_tag", "add_note", "update_stage")  # the default URL


class _Client(Protocol):
    has_ghl: bool
    ghl_calendar_id: str | None
    ghl_incoming_webhook_urls: Any


def runnable(client: _Client) -> list[str]:
    """The tools this client's configuration can run, in ``DEFINITIONS`` order.

    Workflow mode (any incoming-webhook URL) runs ``send_sms`` with any URL and the other
    four with the ``default`` one; API mode runs the five with a token and location.
    ``lookup_contact`` and the calendar tools need the API, the calendar tools a calendar.
    """
    urls = {kind for kind, url in client.ghl_incoming_webhook_urls.items() if url}
    can = {"get_call_context"}
    if urls:
        can |= {"send_sms"} | (set(WORKFLOW_DEFAULT) if "default" in urls else set())
    elif client.has_ghl:
        can |= {"send_sms", *WORKFLOW_DEFAULT}
    if client.has_ghl:
        can.add("lookup_contact")
        if client.ghl_calendar_id:
            can |= {"check_availability", "book_appointment"}
    return [name for name in DEFINITIONS if name in can]


def function(name: str) -> dict[str, Any]:
    """The ``function`` object of a Vapi function tool."""
    return {"name": name, **DEFINITIONS[name]}
