"""``get_call_context``: what the store knows of the current call, and of no other."""

from __future__ import annotations

from typing import Any

from ..context import Context
from . import ToolError, tool


@tool("get_call_context")
def get_call_context(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
    asked, call_id = arguments.get("callId"), ctx.call_id
    if asked and asked != call_id:  # another call may be another client's
        raise ToolError("I can only look up the current call.")
    if not call_id:
        raise ToolError("There is no call id to look up.")
    try:
        state = ctx.state
        known = {
            "callId": call_id,
            "status": state.get_status(call_id),
            "summary": state.get_call_summary(call_id),
            "metadata": state.get_metadata(call_id),
        }
    except ValueError as exc:
        raise ToolError(f"That call id cannot be looked up: {exc}.") from None
    if not any(known[name] for name in ("status", "summary", "metadata")):
        return {"callId": call_id, "known": False}
    return known
