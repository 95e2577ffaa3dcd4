"""Vapi server messages: marshmallow schemas, and the ``CallReport`` of an end-of-call-report.

Unknown fields are kept (Vapi adds fields often); only the fields we act on are
type-checked. Payloads are read defensively: legacy top-level ``summary`` /
``transcript`` / ``recordingUrl``, ``timestamp`` as ISO or epoch, tool arguments as
an object or a JSON string, and an embedded ``call`` that may be a stale snapshot.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validates_schema

from .ids import check_url_id, is_url_id


class InvalidJson(Exception):
    """The body is not JSON."""


class InvalidPayload(Exception):
    """JSON that is not a Vapi message we can act on; ``details`` maps field -> messages."""

    def __init__(self, details: dict[str, Any]):
        super().__init__("invalid payload")
        self.details = details


# Fields
class UrlId(fields.String):
    """An id that becomes part of a storage key and of an outside URL (``ids.check_url_id``)."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        try:
            return check_url_id(value, attr or "id")
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class Timestamp(fields.Field):
    """ISO-8601 text or epoch milliseconds (seconds if small) -> aware datetime."""

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = parse_time(value)
        if parsed is None:
            raise ValidationError("Must be an ISO-8601 time or epoch milliseconds.")
        return parsed


class ToolArguments(fields.Field):
    """An object, or the same object as a JSON string (decoded later, per tool call)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict | str):
            raise ValidationError("Must be an object or a JSON string.")
        return value


class Scalar(fields.Field):
    """A string, number or boolean, kept as text (successEvaluation is "true", true, 8...)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            return str(value)
        raise ValidationError("Must be a string, number or boolean.")


def _text():
    return fields.String(allow_none=True)


def _object():
    return fields.Dict(allow_none=True)


def _nested(schema):
    return fields.Nested(schema, allow_none=True)


# Schemas
class Lenient(Schema):
    class Meta:
        unknown = INCLUDE


class CustomerSchema(Lenient):
    number, name, email, externalId = _text(), _text(), _text(), _text()


class OverridesSchema(Lenient):
    variableValues, metadata = _object(), _object()


class CallSchema(Lenient):
    id = UrlId(allow_none=True)
    assistantId, phoneNumberId, status, endedReason = _text(), _text(), _text(), _text()
    startedAt, endedAt = _text(), _text()
    cost = fields.Float(allow_none=True)
    customer = _nested(CustomerSchema)
    assistantOverrides = _nested(OverridesSchema)
    metadata = _object()


class AssistantSchema(Lenient):
    id, metadata = _text(), _object()


class PhoneNumberSchema(Lenient):
    id, number = _text(), _text()


class AnalysisSchema(Lenient):
    summary = _text()
    structuredData = _object()
    successEvaluation = Scalar(allow_none=True)


class ArtifactSchema(Lenient):
    transcript, recordingUrl, stereoRecordingUrl = _text(), _text(), _text()
    recording, variableValues = _object(), _object()


class EnvelopeSchema(Lenient):
    class MessageTypeSchema(Lenient):
        type = fields.String(required=True)

    message = fields.Nested(MessageTypeSchema, required=True)


class MessageSchema(Lenient):
    """Fields common to every message type we act on."""

    type = fields.String(required=True)
    timestamp = Timestamp(allow_none=True)
    call = _nested(CallSchema)
    customer = _nested(CustomerSchema)
    assistant = _nested(AssistantSchema)
    phoneNumber = _nested(PhoneNumberSchema)


class EndOfCallReportSchema(MessageSchema):
    endedReason, startedAt, endedAt = _text(), _text(), _text()
    cost = fields.Float(allow_none=True)
    analysis = _nested(AnalysisSchema)
    artifact = _nested(ArtifactSchema)
    # Legacy top-level fields real payloads still carry; fallbacks only.
    summary, transcript, recordingUrl, stereoRecordingUrl = _text(), _text(), _text(), _text()
    durationSeconds = fields.Float(allow_none=True)

    @validates_schema
    def _needs_call_id(self, data, **kwargs):
        if not (data.get("call") or {}).get("id"):
            raise ValidationError({"call": {"id": ["Missing data for required field."]}})


class StatusUpdateSchema(MessageSchema):
    status = fields.String(required=True)
    endedReason = _text()


class FunctionSchema(Lenient):
    name = _text()
    arguments = ToolArguments(allow_none=True)


class ToolCallSchema(Lenient):
    id = _text()
    name = _text()
    function = _nested(FunctionSchema)
    arguments = ToolArguments(allow_none=True)
    parameters = ToolArguments(allow_none=True)


class ToolCallsSchema(MessageSchema):
    toolCallList = fields.List(fields.Nested(ToolCallSchema), allow_none=True)
    toolCalls = fields.List(fields.Nested(ToolCallSchema), allow_none=True)  # legacy duplicate


class FunctionCallSchema(MessageSchema):
    class CallSchema(Lenient):
        name = fields.String(required=True)
        parameters = ToolArguments(allow_none=True)

    functionCall = fields.Nested(CallSchema, required=True)


def load_json(body: bytes) -> Any:
    """Raw bytes -> a JSON value; ``InvalidJson`` (a 400) for anything else, however deep."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidJson(_first_line(exc)) from None


def parse(body: bytes) -> dict[str, Any]:
    """Raw bytes -> the ``message`` object, with a string ``type``."""
    document = load_json(body)
    if not isinstance(document, dict):
        raise InvalidPayload({"_schema": ["Expected a JSON object."]})
    problem = _unstorable(document, check_text=b"\\u" in body)
    if problem:
        raise InvalidPayload({"_schema": [problem]})
    try:
        return _instance(EnvelopeSchema).load(document)["message"]
    except ValidationError as exc:
        raise InvalidPayload(exc.messages_dict) from None


MAX_DEPTH = 64  # Vapi's messages nest about 10 deep; far deeper only costs us recursion


def _unstorable(document: Any, check_text: bool) -> str | None:
    """Why the document cannot be stored as UTF-8 JSON, if it cannot (walked, not recursed)."""
    # Only \u escapes can smuggle lone surrogates in: without any, text needs no check.
    worth_a_look = (dict, list, str) if check_text else (dict, list)
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"Nested more than {MAX_DEPTH} levels deep."
        if isinstance(value, str):
            if not _is_unicode(value):
                return "Contains text that is not valid Unicode (a lone surrogate)."
            continue
        items = value.values() if isinstance(value, dict) else value
        stack.extend((item, depth + 1) for item in items if isinstance(item, worth_a_look))
        if check_text and isinstance(value, dict):
            stack.extend((key, depth) for key in value)
    return None


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validate(schema: type[Schema], message: dict[str, Any]) -> dict[str, Any]:
    try:
        return _instance(schema).load(message)
    except ValidationError as exc:
        raise InvalidPayload({"message": exc.messages_dict}) from None
    except RecursionError:
        raise InvalidPayload({"message": ["Nested too deeply."]}) from None


def loggable_call_id(message: dict[str, Any]) -> str | None:
    """The call id, before validation, if it is safe to put in a log line."""
    call = message.get("call")
    call_id = call.get("id") if isinstance(call, dict) else None
    return call_id if is_url_id(call_id) else None


@functools.cache
def _instance(schema: type[Schema]) -> Schema:
    """One instance per schema: building one (and its nested ones) costs more than a load."""
    return schema()


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def parse_time(value: Any) -> datetime | None:
    """ISO-8601 text, or an epoch number in milliseconds (or seconds); else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            seconds = value / 1000 if abs(value) > 1e11 else value
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):  # out of any calendar
            return None
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


# Outcome buckets for endedReason (604 values and counting: group, don't enumerate).
_NO_ANSWER = ("customer-did-not-answer", "customer-busy", "no-answer", "operator-busy",
              "misdialed", "unallocated-number")
_COMPLETED = ("customer-ended-call", "assistant-ended-call", "assistant-said-end-call-phrase",
              "exceeded-max-duration", "silence-timed-out")
_FAILED = ("error", "fault", "failed", "assistant-request-", "assistant-not-", "worker-shutdown",
           "closed-websocket", "vonage-", "call.ringing.")


def outcome(ended_reason: str | None) -> str:
    """completed / no-answer / voicemail / transferred / failed / other."""
    reason = (ended_reason or "").lower()
    if not reason:
        return "other"
    if "voicemail" in reason:
        return "voicemail"
    if any(marker in reason for marker in _NO_ANSWER):
        return "no-answer"
    if any(marker in reason for marker in _FAILED):
        return "failed"
    if "forwarded" in reason or "transfer" in reason:
        return "transferred"
    if reason.startswith(_COMPLETED):
        return "completed"
    return "other"


CONTACT_KEYS = ("ghlContactId", "contactId")


@dataclass(frozen=True)
class CallReport:
    """What an end-of-call-report tells us, with end-state data preferred over the call snapshot."""

    call_id: str
    ended_reason: str | None = None
    outcome: str = "other"
    customer_number: str | None = None
    customer_name: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_seconds: float | None = None
    cost: float | None = None
    summary: str | None = None
    structured_data: dict[str, Any] = field(default_factory=dict)
    success_evaluation: str | None = None
    transcript: str | None = None
    recording_url: str | None = None
    contact_id: str | None = None
    # The call named a contact id that fails ``ids.check_url_id``: no CRM request is made
    # for it, and no other contact is looked for (contact_id stays None).
    contact_id_invalid: bool = False
    assistant_id: str | None = None
    phone_number_id: str | None = None
    lead_name: str | None = None
    lead_email: str | None = None
    ghl_contact: dict[str, Any] = field(default_factory=dict)  # call.metadata.ghl.contact
    ghl_tags: tuple[str, ...] = ()  # call.metadata.ghl.tags

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> CallReport:
        """Build from a message validated by ``EndOfCallReportSchema``."""
        call = message.get("call") or {}
        analysis = message.get("analysis") or {}
        artifact = message.get("artifact") or {}
        # The message-level customer is newer; the call snapshot's fills what it lacks.
        customer = {**(call.get("customer") or {}),
                    **{k: v for k, v in (message.get("customer") or {}).items() if v is not None}}
        phone_number = message.get("phoneNumber") or {}
        ghl = _ghl(message)
        started = parse_time(message.get("startedAt") or call.get("startedAt"))
        ended = parse_time(message.get("endedAt") or call.get("endedAt"))
        ended_reason = message.get("endedReason") or call.get("endedReason")
        contact_id = find_contact_id(message)
        return cls(
            call_id=call["id"],
            ended_reason=ended_reason,
            outcome=outcome(ended_reason),
            customer_number=customer.get("number"),
            customer_name=customer.get("name"),
            started_at=started,
            ended_at=ended,
            duration_seconds=_duration(started, ended, message.get("durationSeconds")),
            cost=_first(message.get("cost"), call.get("cost")),
            summary=analysis.get("summary") or message.get("summary"),
            structured_data=analysis.get("structuredData") or {},
            success_evaluation=analysis.get("successEvaluation"),
            transcript=artifact.get("transcript") or message.get("transcript"),
            recording_url=_recording_url(artifact, message),
            contact_id=contact_id if is_url_id(contact_id) else None,
            contact_id_invalid=contact_id is not None and not is_url_id(contact_id),
            assistant_id=call.get("assistantId") or (message.get("assistant") or {}).get("id"),
            phone_number_id=call.get("phoneNumberId") or phone_number.get("id"),
            lead_name=_lead(message, "name", customer),
            lead_email=_lead(message, "email", customer),
            ghl_contact=ghl["contact"] if isinstance(ghl.get("contact"), dict) else {},
            ghl_tags=tuple(tag for tag in _list(ghl.get("tags")) if isinstance(tag, str) and tag),
        )

    def to_metadata(self) -> dict[str, Any]:
        """What the store keeps of the call (the transcript stays out: it can be large)."""
        data = self.to_dict()
        data.pop("transcript")
        if not data["contact_id_invalid"]:  # said only when it is so
            data.pop("contact_id_invalid")
        return data

    def to_dict(self) -> dict[str, Any]:
        """All of it as JSON-ready values (what the outbox keeps to deliver it later)."""
        # Shallow: the nested dicts are only ever serialised, never changed.
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("started_at", "ended_at"):
            data[name] = data[name].isoformat() if data[name] else None
        data["ghl_tags"] = list(self.ghl_tags)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallReport:
        """The inverse of ``to_dict``."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        for name in ("started_at", "ended_at"):
            values[name] = datetime.fromisoformat(values[name]) if values.get(name) else None
        values["ghl_tags"] = tuple(values.get("ghl_tags") or ())
        if values.get("contact_id") is not None and not is_url_id(values["contact_id"]):
            values |= {"contact_id": None, "contact_id_invalid": True}  # kept before the rule
        return cls(**values)


def _metadata_places(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Where a call's creator may have put our data (reference §4.6), best first."""
    call = message.get("call") or {}
    overrides = call.get("assistantOverrides") or {}
    places = [
        overrides.get("variableValues"), overrides.get("metadata"), call.get("metadata"),
        (message.get("assistant") or {}).get("metadata"),
        (message.get("artifact") or {}).get("variableValues"),
    ]
    return [place for place in places if isinstance(place, dict)]


def _ghl(message: dict[str, Any]) -> dict[str, Any]:
    """The original service's ``metadata.ghl`` object: contactId, contact, tags."""
    return next((place["ghl"] for place in _metadata_places(message)
                 if isinstance(place.get("ghl"), dict)), {})


def _lead(message: dict[str, Any], key: str, customer: dict[str, Any]) -> str | None:
    """The lead's name or email, first match in the original service's order (seed §8)."""
    call = message.get("call") or {}
    overrides = call.get("assistantOverrides") or {}
    contact = _ghl(message).get("contact") or {}
    contact = contact if isinstance(contact, dict) else {}
    candidates = [(call.get("variables") or {}), (call.get("variableValues") or {}),
                  (overrides.get("variableValues") or {}), contact, (call.get("metadata") or {})]
    for place in candidates:
        value = place.get(key) if isinstance(place, dict) else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    if key == "name":
        full = " ".join(str(contact.get(k) or "") for k in ("firstName", "lastName")).strip()
        if full:
            return full
    value = customer.get(key)
    return value if isinstance(value, str) and value else None


def find_contact_id(message: dict[str, Any]) -> str | None:
    """The CRM contact id, from wherever the call's creator put it (reference §4.6).

    The first one found, as given: the caller checks it (``ids.is_url_id``).
    """
    call = message.get("call") or {}
    for place in _metadata_places(message):
        for candidate in (place, place.get("ghl")):
            if not isinstance(candidate, dict):
                continue
            for key in CONTACT_KEYS:
                if isinstance(candidate.get(key), str) and candidate[key]:
                    return candidate[key]
    for customer in (message.get("customer"), call.get("customer")):
        if customer and customer.get("externalId"):
            return customer["externalId"]
    return None


def _duration(started, ended, legacy_seconds) -> float | None:
    if started and ended and ended >= started:
        return round((ended - started).total_seconds(), 3)
    return legacy_seconds


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _first(*values):
    return next((value for value in values if value is not None), None)


def _recording_url(artifact: dict[str, Any], message: dict[str, Any]) -> str | None:
    recording = artifact.get("recording") or {}
    mono = recording.get("mono") if isinstance(recording.get("mono"), dict) else {}
    candidates = [artifact.get("recordingUrl"), mono.get("combinedUrl"),
                  recording.get("stereoUrl"), artifact.get("stereoRecordingUrl"),
                  message.get("recordingUrl"), message.get("stereoRecordingUrl")]
    return next((url for url in candidates if isinstance(url, str) and url), None)


@dataclass(frozen=True)
class ToolCall:
    """One tool call, whichever of Vapi's shapes it came in."""

    id: str | None
    name: str | None
    arguments: dict[str, Any] | None  # None when they could not be read
    argument_error: str | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ToolCall:
        function = item.get("function")
        function = function if isinstance(function, dict) else {}  # unvalidated in functionCall
        name = function.get("name") or item.get("name")
        name = name if isinstance(name, str) else None
        raw = _first(function.get("arguments"), item.get("arguments"), item.get("parameters"))
        arguments, error = _decode_arguments(raw)
        return cls(id=item.get("id"), name=name, arguments=arguments, argument_error=error)


def tool_calls(message: dict[str, Any]) -> list[ToolCall]:
    """The calls of a validated ``tool-calls`` message (``toolCalls`` is the legacy copy)."""
    items = message.get("toolCallList") or message.get("toolCalls") or []
    return [ToolCall.from_item(item) for item in items]


def _decode_arguments(raw: Any) -> tuple[dict[str, Any] | None, str | None]:
    if raw is None or raw == "":
        return {}, None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            return None, "The tool arguments are not valid JSON."
    if not isinstance(raw, dict):
        return None, "The tool arguments must be a JSON object."
    return raw, None
