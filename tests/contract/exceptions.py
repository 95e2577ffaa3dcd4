"""The only departures from GoHighLevel's OpenAPI files the contract checks accept.

Each entry: the operation (method and the spec's path template), the field (``header.X``,
``query.X``, ``body.a.b``, ``body.list[].x``, ``{date}`` for a date key; ``answer <status> ...``
for the fake's answers; ``*`` for the whole operation), the spec's own words, why, and, for an
answer a test makes off-spec on purpose, that test. Nothing else is exempt: a new violation fails
the test that caused it.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import ledger


@dataclass(frozen=True)
class Exemption:
    operation: str
    field: str
    spec_says: str
    why: str
    test: str | None = None  # only in this test (node id without parameters)


EXCEPTIONS: tuple[Exemption, ...] = (
    # A URL that is not an API v2 operation.
    Exemption(
        "POST /hooks/{id}", "*",
        "(not in the API v2 files: a workflow's Inbound Webhook trigger URL)",
        "The workflow mode posts to the Inbound Webhook URL a GoHighLevel workflow gives "
        "(https://services.leadconnectorhq.com/hooks/...): any JSON, no token, no Version. It is "
        "not an API v2 operation, so there is nothing to check it against."),
    # Where the spec contradicts GoHighLevel's live answers.
    Exemption(
        "GET /calendars/{calendarId}/free-slots", "answer 200 body.traceId",
        '"type": "object", "additionalProperties": {"$ref": "#/components/schemas/SlotsSchema"}'
        ' ("Availability map keyed by date (YYYY-MM-DD)")',
        "Live answers also carry a top-level \"traceId\" string (reference ghl_slack.md, "
        "verified against live payloads): the fake sends it so the tool is proven to skip it."),
    Exemption(
        "GET /opportunities/pipelines", "answer 200 body.pipelines[].stages[]",
        'PipelinesResponseSchema: "stages": {"type": "array", "items": {"type": "array"}}',
        "Live answers list each stage as an object {\"id\", \"name\", \"position\", ...} "
        "(reference ghl_slack.md A6: \"pipelines with their stages (stage ids)\"; every client "
        "of the API reads stage.id): an array of arrays carries no stage id at all. The fake "
        "answers objects so the stage step's order (by position) is proven on the live shape."),
    # Where the spec cannot be satisfied: send_sms leaves these out (vapi_bridge/tools/crm.py).
    Exemption(
        "POST /conversations/messages", "body.subType",
        'SendMessageBodyDto "required": ["type", "subType", "contactId", "status"] (since the '
        '2026-05-01 revision); subType is typed "object" with the example "Email" and the same '
        'description as type',
        "No value satisfies it (an object whose example is a string), and revisions before "
        "2026-05-01 required only type and contactId: send_sms sends type SMS, contactId and "
        "message, as the API has always taken. A refusal is said to the assistant and logged."),
    Exemption(
        "POST /conversations/messages", "body.status",
        'SendMessageBodyDto "required": [..., "status"]; status "enum": ["delivered", "failed", '
        '"pending", "read"]',
        "That enum is what happened to a message (the same as SendMessageResponseDto's and "
        "UpdateMessageStatusDto's): a sender cannot truthfully claim one, and earlier revisions "
        "did not ask for it. send_sms sends no status."),
    # Answers a test makes off-spec on purpose, to prove the app survives them.
    Exemption(
        "GET /calendars/{calendarId}/free-slots", "answer 200 body.{date}.slots[]",
        'SlotsSchema: "slots": {"type": "array", "items": {"type": "string"}}',
        "The test feeds a non-time string and a number among the slots: they are skipped.",
        test="tests/tools/test_calendar.py::test_availability_reads_out_a_few_times_of_a_few_days"),
    Exemption(
        "GET /calendars/{calendarId}/free-slots", "answer 200 body.meta.slots",
        'SlotsSchema: "required": ["slots"] (every key of the map is a date with its slots)',
        "The test adds a \"meta\" key that is neither a date nor slots: it is ignored.",
        test="tests/tools/test_calendar.py::test_availability_reads_out_a_few_times_of_a_few_days"),
)


def exempt(operation: str, field: str, test: str) -> bool:
    """Whether an entry covers this violation (counted in the ledger when one does)."""
    if operation.startswith("POST /hooks/"):
        operation = "POST /hooks/{id}"
    test = test.split("[")[0]
    for entry in EXCEPTIONS:
        if (entry.operation, entry.field) == (operation, field) and entry.test in (None, test):
            ledger.count(ledger.exempted, f"{operation} {field}")
            return True
    return False
