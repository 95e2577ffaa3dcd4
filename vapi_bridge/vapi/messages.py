"""Reading a Vapi server message: bytes -> JSON -> a message validated for its type.

Tool arguments come as an object or a JSON string; each tool call is decoded on its own.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

import msgspec
from marshmallow import Schema, ValidationError

from ..ids import is_url_id
from .schemas import load


class InvalidJson(Exception):
    """The body is not JSON."""


class InvalidPayload(Exception):
    """JSON that is not a Vapi message we can act on; ``details`` maps field -> messages."""

    def __init__(self, details: dict[str, Any]):
        super().__init__("invalid payload")
        self.details = details


def load_json(body: bytes) -> Any:
    """Raw bytes -> a JSON value; ``InvalidJson`` (a 400) for anything else, however deep."""
    try:
        # Decoded strictly first: json.loads(bytes) decodes with "surrogatepass", which would
        # let a surrogate encoded as raw bytes (ED A0 80) through as text no store can keep.
        return json.loads(body.decode("utf-8-sig"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidJson(_first_line(exc)) from None


class _Call(msgspec.Struct):
    assistantId: Any = None
    phoneNumberId: Any = None


class _Id(msgspec.Struct):
    id: Any = None


class _Message(msgspec.Struct):
    type: str
    call: _Call | None = None
    assistant: _Id | None = None
    phoneNumber: _Id | None = None


class _Envelope(msgspec.Struct):
    message: _Message


# Decodes only the fields above and skips the rest (checked as JSON, not turned into objects,
# its strings not UTF-8 checked): an 80-turn conversation-update, 42 KB, in ~25 µs, where
# orjson takes ~70 µs and the stdlib ~130 µs to build it whole.
_peeker = msgspec.json.Decoder(_Envelope)


def peek(body: bytes) -> dict[str, Any]:
    """Raw bytes -> the ``message``'s type and the ids that say whose call it is, nothing
    else: enough to tell whether we act on it and for whom (``parse`` reads those whole).

    What the quick decoder cannot read (not JSON, a BOM, NaN, a lone surrogate, more than
    1,024 levels, a type that is not a string, a ``call`` that is not an object...) the
    stdlib parser reads or refuses, with the same answers as ever. Invalid UTF-8 inside a
    field it skips is not seen: a message we ignore is answered "ignored" all the same.
    """
    try:
        message = _peeker.decode(body).message
    except (msgspec.DecodeError, RecursionError):
        return _envelope(load_json(body), body)
    call, assistant, phone = message.call, message.assistant, message.phoneNumber
    return {"type": message.type,
            "call": {"assistantId": call.assistantId, "phoneNumberId": call.phoneNumberId}
            if call else None,
            "assistant": {"id": assistant.id} if assistant else None,
            "phoneNumber": {"id": phone.id} if phone else None}


def parse(body: bytes) -> dict[str, Any]:
    """Raw bytes -> the ``message`` object, storable: the stdlib parser (a C parser would
    turn an integer past 64 bits into a float), depth and lone surrogates checked."""
    document = load_json(body)
    problem = _unstorable(document, check_text=_may_hold_surrogates(body))
    if problem:
        raise InvalidPayload({"_schema": [problem]})
    return _envelope(document, body)


def _envelope(document: Any, body: bytes) -> dict[str, Any]:
    """``{"message": {"type": "..."}}``: a type check, with marshmallow's words for its errors."""
    message = document.get("message", _MISSING) if isinstance(document, dict) else None
    kind = message.get("type", _MISSING) if isinstance(message, dict) else None
    if isinstance(kind, str):
        return message
    if not isinstance(document, dict):
        raise InvalidPayload({"_schema": ["Expected a JSON object."]})
    # A document too deep or with a lone surrogate says so first, as it always has.
    problem = _unstorable(document, check_text=_may_hold_surrogates(body))
    if problem:
        raise InvalidPayload({"_schema": [problem]})
    if not isinstance(message, dict):
        raise InvalidPayload({"message": _absent(message) or {"_schema": ["Invalid input type."]}})
    raise InvalidPayload({"message": {"type": _absent(kind) or ["Not a valid string."]}})


_MISSING = object()


def _absent(value: Any) -> list[str] | None:
    if value is _MISSING:
        return ["Missing data for required field."]
    return ["Field may not be null."] if value is None else None


# Once the bytes are decoded strictly, only an escape (\uD800-\uDFFF) can put a surrogate in
# a str: a body with none needs no text check (a pair also matches: only a walk more).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _may_hold_surrogates(body: bytes) -> bool:
    return _SURROGATE_ESCAPE.search(body) is not None


MAX_DEPTH = 64  # Vapi's messages nest about 10 deep; far deeper only costs us recursion


def _unstorable(document: Any, check_text: bool) -> str | None:
    """Why the document cannot be stored as UTF-8 JSON, if it cannot (walked, not recursed)."""
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
        return load(_instance(schema), message)
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


def _first(*values):
    return next((value for value in values if value is not None), None)


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
    """The calls of a validated ``tool-calls`` message, each once.

    ``toolCallList`` is the main list, ``toolCalls`` its legacy copy, and
    ``toolWithToolCallList`` holds the same calls again, each under ``toolCall`` beside the
    tool's configuration; some messages carry only that one. The first list that has calls
    is taken whole; the others add only the calls whose id it has not seen (a call without
    an id cannot be told apart from its copy, so only the first list's are run).
    """
    with_tool = [entry.get("toolCall") for entry in message.get("toolWithToolCallList") or []]
    lists = [message.get("toolCallList") or [], message.get("toolCalls") or [],
             [item for item in with_tool if isinstance(item, dict)]]
    first = next((items for items in lists if items), [])
    items, seen = list(first), {item.get("id") for item in first}
    for item in (item for other in lists if other is not first for item in other):
        if item.get("id") and item["id"] not in seen:
            seen.add(item["id"])
            items.append(item)
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
