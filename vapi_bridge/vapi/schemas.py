"""Vapi server messages as marshmallow schemas, and the custom fields they read.

Unknown fields are kept as they came (Vapi adds fields often), unseen by marshmallow: only
the fields we act on are handed to it, and type-checked (``load``). Payloads are read
defensively: legacy top-level ``summary`` / ``transcript`` / ``recordingUrl``, ``timestamp``
as ISO or epoch, tool arguments as an object or a JSON string.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validates_schema

from ..ids import check_url_id


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


class Kept(fields.Nested):
    """A nested object: its declared fields loaded, every other one kept as it came."""

    def _deserialize(self, value, attr, data, partial=None, **kwargs):
        if not isinstance(value, dict):
            raise ValidationError({"_schema": ["Invalid input type."]})
        return {**value, **super()._deserialize(declared(self.schema, value), attr, data,
                                                partial=partial, **kwargs)}


def declared(schema: Schema, value: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``value`` that ``schema`` reads: all marshmallow needs to see."""
    names = schema.load_fields
    return {name: item for name, item in value.items() if name in names}


def load(schema: Schema, message: dict[str, Any]) -> dict[str, Any]:
    """``message`` with its declared fields loaded by ``schema``, the others as they came."""
    return {**message, **schema.load(declared(schema, message))}


def _nested(schema):
    return Kept(schema, allow_none=True)


# Schemas
class Lenient(Schema):
    class Meta:
        unknown = EXCLUDE  # never met: only declared fields are handed over


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


class ToolWithToolCallSchema(Lenient):
    # The tool's configuration is kept as sent (its ``function.parameters`` is a JSON
    # schema, not arguments); only the call is read.
    toolCall = _nested(ToolCallSchema)


class ToolCallsSchema(MessageSchema):
    toolCallList = fields.List(Kept(ToolCallSchema), allow_none=True)
    toolCalls = fields.List(Kept(ToolCallSchema), allow_none=True)  # legacy duplicate
    toolWithToolCallList = fields.List(Kept(ToolWithToolCallSchema), allow_none=True)


class FunctionCallSchema(MessageSchema):
    class CallSchema(Lenient):
        name = fields.String(required=True)
        parameters = ToolArguments(allow_none=True)

    functionCall = Kept(CallSchema, required=True)


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
