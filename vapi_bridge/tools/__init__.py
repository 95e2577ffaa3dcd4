"""Server tools the assistant calls during a call: one registry, one result per call.

A tool is ``function(arguments: dict, ctx: Context) -> str``. Vapi wants every
result and error as a single-line string, one per ``toolCallId``, in order.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from ..context import Context
from ..vapi.messages import ToolCall

log = logging.getLogger(__name__)

Tool = Callable[[dict[str, Any], Context], Any]
REGISTRY: dict[str, Tool] = {}


class ToolError(Exception):
    """A failure the assistant can say out loud; its message is the answer."""


def tool(name: str) -> Callable[[Tool], Tool]:
    def register(function: Tool) -> Tool:
        REGISTRY[name] = function
        return function

    return register


def run(call: ToolCall, ctx: Context) -> dict[str, str]:
    """Run one tool call; ``{"result": ...}`` or ``{"error": ...}``, never an exception."""
    function = REGISTRY.get(call.name or "")
    if function is None:
        return {"error": f"Unknown tool: {one_line(call.name or '(no name)')}"}
    if call.arguments is None:
        return {"error": call.argument_error or "The tool arguments could not be read."}
    try:
        result = function(call.arguments, ctx)
    except ToolError as exc:
        return {"error": one_line(str(exc))}
    except Exception:  # a broken tool must not break the other calls in the message
        log.exception("[TOOLS] %s failed requestId=%s callId=%s", call.name, ctx.request_id,
                      ctx.call_id)
        return {"error": f"{call.name} failed. Please try again later."}
    if not isinstance(result, str):
        result = json.dumps(result, ensure_ascii=False, default=str)
    return {"result": one_line(result)}


def run_all(calls: list[ToolCall], ctx: Context) -> list[dict[str, str]]:
    return [{"toolCallId": call.id or "", "name": call.name or "", **run(call, ctx)}
            for call in calls]


def one_line(text: str) -> str:
    """Vapi's parser breaks on line breaks in results."""
    return re.sub(r"\s*[\r\n]+\s*", " ", text).strip()


from . import call_context  # noqa: E402,F401  (registers the tools)
