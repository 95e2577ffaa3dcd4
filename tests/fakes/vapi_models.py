"""Request bodies checked against the official Vapi SDK's pydantic models (vapi-server-sdk).

The SDK's models allow unknown fields and type enums as ``Literal[...] | Any``; Vapi itself
refuses unknown properties (400 "property x should not exist"). So a body passes only when it
validates, has no field the model lacks (at any depth), and every enum value is one listed.
"""

from __future__ import annotations

import inspect
import re
import typing
from typing import Any

import pydantic
from pydantic import BaseModel, TypeAdapter
from vapi.assistants.client import AssistantsClient
from vapi.assistants.types import UpdateAssistantDtoModel, UpdateAssistantDtoServerMessagesItem
from vapi.tools.types import CreateToolsRequest_Function
from vapi.types import CreateCustomCredentialDto, Server, UpdateFunctionToolDto

SERVER_MESSAGES = typing.get_args(typing.get_args(UpdateAssistantDtoServerMessagesItem)[0])
# PATCH /assistant/{id} takes the SDK's update() keyword arguments, in camelCase.
ASSISTANT_FIELDS = {re.sub(r"_(\w)", lambda m: m.group(1).upper(), name): name for name in
                    inspect.signature(AssistantsClient.update).parameters
                    if name not in ("self", "id", "request_options")}


def credential_problems(body: dict[str, Any]) -> list[str]:
    """POST /credential: the union is told apart by ``provider`` (the SDK model drops it)."""
    if body.get("provider") != "custom-credential":
        return ["provider must be custom-credential"]
    return problems(CreateCustomCredentialDto, {k: v for k, v in body.items() if k != "provider"})


def create_tool_problems(body: dict[str, Any]) -> list[str]:
    return problems(CreateToolsRequest_Function, body)


def update_tool_problems(body: dict[str, Any]) -> list[str]:
    return problems(UpdateFunctionToolDto, body)


def assistant_problems(body: dict[str, Any]) -> list[str]:
    found = [f"{key} is not a field of PATCH /assistant" for key in body
             if key not in ASSISTANT_FIELDS]
    if "model" in body:
        found += problems(UpdateAssistantDtoModel, body["model"], "model")
    if "server" in body:
        found += problems(Server, body["server"], "server")
    found += [f"serverMessages: {m!r} is not one of the SDK's values"
              for m in body.get("serverMessages", []) if m not in SERVER_MESSAGES]
    return found


def problems(model: Any, body: Any, path: str = "") -> list[str]:
    try:
        parsed = TypeAdapter(model).validate_python(body)
    except pydantic.ValidationError as exc:
        return [f"{path}{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    return list(_unknown(parsed, path))


def _unknown(value: Any, path: str) -> typing.Iterator[str]:
    if isinstance(value, BaseModel):
        for key in value.model_extra or {}:
            yield f"{path}.{key} is not in the SDK model {type(value).__name__}"
        for name, info in type(value).model_fields.items():
            item = getattr(value, name)
            where = f"{path}.{info.alias or name}"
            allowed = _open_enum(info.annotation)
            if allowed and item is not None and item not in allowed:
                yield f"{where}: {item!r} is not one of {allowed}"
            yield from _unknown(item, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _unknown(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _unknown(item, f"{path}[{index}]")


def _open_enum(annotation: Any) -> tuple[str, ...]:
    """The values of a ``Literal[...] | Any`` (optional or not) annotation, else ()."""
    args = typing.get_args(annotation)
    literals = [a for a in args if typing.get_origin(a) is typing.Literal]
    return typing.get_args(literals[0]) if literals and typing.Any in args else ()
