"""Server tools the assistant calls during a call: one registry, one result per call.

A tool is ``function(arguments: dict, ctx: Context) -> str | dict``. Vapi wants every
result and error as a single-line string, one per ``toolCallId``, in order. Each
``toolCallId`` runs once per client: its answer is stored, and a repeated delivery gets it back.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from .. import metrics
from ..clients import name_digest
from ..context import Context
from ..integrations import DeliveryError
from ..storage import StorageError, check_id
from ..vapi.messages import ToolCall
from .definitions import DEFINITIONS

log = logging.getLogger(__name__)

Tool = Callable[[dict[str, Any], Context], Any]
REGISTRY: dict[str, Tool] = {}


class ToolError(Exception):
    """A failure the assistant can say out loud; its message is the answer."""


def tool(name: str) -> Callable[[Tool], Tool]:
    """Register a tool; what Vapi is told about it lives in ``definitions.DEFINITIONS``."""
    if name not in DEFINITIONS:
        raise KeyError(f"tool {name!r} has no definition in tools/definitions.py")

    def register(function: Tool) -> Tool:
        REGISTRY[name] = function
        return function

    return register


MAX_PARALLEL = 4  # tool calls of one message run at once, at most this many
TOO_SLOW = "That is taking longer than expected. Please try again in a moment."


def run(call: ToolCall, ctx: Context) -> dict[str, str]:
    """Run one tool call; ``{"result": ...}`` or ``{"error": ...}``, never an exception."""
    return _execute(call, ctx)[0]


def run_once(call: ToolCall, ctx: Context, deadline: float) -> dict[str, str]:
    """Run a tool call at most once per client and ``toolCallId``: a repeat gets the first
    answer; another client's call with the same id runs on its own."""
    try:
        ids = (client_key(ctx), check_id(call.id, "toolCallId"))
    except ValueError:
        return run(call, ctx)  # no usable id: nothing to deduplicate on
    if not ctx.state.claim("tool", *ids):
        return ctx.state.wait_for_answer("tool", ids, deadline) or {"error": TOO_SLOW}
    answer, keep = _execute(call, ctx)
    outcome = "ok" if "result" in answer else "error"
    entry = _log_line(call, ctx, outcome)
    if keep:  # the call's log line rides along: no round trip of its own
        ctx.state.store_answer("tool", ids, answer, log=entry)
        return answer
    ctx.state.release("tool", *ids)  # a passing outage: let Vapi's next delivery try again
    if entry:
        try:
            ctx.state.record_tool_call(ctx.call_id, call.name or "(no name)", outcome)
        except StorageError as exc:  # the answer matters more than its log line
            log.warning("[TOOLS] %s not logged for callId=%s (%s)", call.name, ctx.call_id,
                        type(exc).__name__)
    return answer


def _log_line(call: ToolCall, ctx: Context, outcome: str) -> tuple[str, str, int] | None:
    """The call's page lists its tool calls: name, outcome and time, never the arguments."""
    try:
        return ctx.state.tool_call_entry(ctx.call_id, call.name or "(no name)", outcome) \
            if ctx.call_id else None
    except ValueError:  # a call id no key can hold: nothing to list it under
        return None


def client_key(ctx: Context) -> str:
    """The client as part of a key: names are free text (spaces, colons), so a digest."""
    return name_digest(ctx.client.name if ctx.client else "")


def run_all(calls: list[ToolCall], ctx: Context) -> list[dict[str, str]]:
    """All the calls of one message, concurrently (bounded), answered in order by the deadline."""
    deadline = time.monotonic() + ctx.settings.tool_deadline
    pool = ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL, len(calls))),
                              thread_name_prefix="tool")
    futures = [pool.submit(contextvars.copy_context().run, run_once, call, ctx, deadline)
               for call in calls]
    wait(futures, timeout=max(0.0, deadline - time.monotonic()))
    pool.shutdown(wait=False)  # a late tool finishes and stores its answer for a repeat
    answers = []
    for call, future in zip(calls, futures, strict=True):
        answer = future.result() if future.done() else {"error": TOO_SLOW}
        if not future.done():
            log.warning("[TOOLS] %s missed the %ss deadline requestId=%s callId=%s", call.name,
                        ctx.settings.tool_deadline, ctx.request_id, ctx.call_id)
        answers.append({"toolCallId": call.id or "", "name": call.name or "", **answer})
    return answers


def parallel(*reads: Callable[[], Any]) -> list[Any]:
    """Independent reads of one tool at once (the caller waits on the slowest, not the sum);
    the first failure is raised."""
    with ThreadPoolExecutor(max_workers=len(reads), thread_name_prefix="read") as pool:
        futures = [pool.submit(contextvars.copy_context().run, read) for read in reads]
        return [future.result() for future in futures]


def _execute(call: ToolCall, ctx: Context) -> tuple[dict[str, str], bool]:
    """(answer, whether to keep it for repeats), counted: ok, error (said to the caller and
    kept) or failed (an outage or a crash: Vapi's next delivery runs it again)."""
    answer, keep = _answer(call, ctx)
    metrics.tool_call(call.name if call.name in REGISTRY else "unknown",
                      "ok" if "result" in answer else "error" if keep else "failed")
    return answer, keep


def _answer(call: ToolCall, ctx: Context) -> tuple[dict[str, str], bool]:
    """Arguments never reach the log."""
    function = REGISTRY.get(call.name or "")
    if function is None:
        return {"error": f"Unknown tool: {one_line(call.name or '(no name)')}"}, True
    if call.arguments is None:
        return {"error": call.argument_error or "The tool arguments could not be read."}, True
    try:
        result = function(call.arguments, ctx)
    except ToolError as exc:
        return {"error": one_line(str(exc))}, True
    except DeliveryError as exc:
        log.warning("[TOOLS] %s: %s requestId=%s callId=%s", call.name, exc, ctx.request_id,
                    ctx.call_id)
        return {"error": "The CRM is not answering right now. Please try again in a moment."
                if exc.retryable else f"The CRM refused that request ({exc.status or 'error'})."
                }, not exc.retryable
    except Exception:  # a broken tool must not break the other calls in the message
        log.exception("[TOOLS] %s failed requestId=%s callId=%s", call.name, ctx.request_id,
                      ctx.call_id)
        return {"error": f"{call.name} failed. Please try again later."}, False
    if not isinstance(result, str):
        result = json.dumps(result, ensure_ascii=False, default=str)
    return {"result": one_line(result)}, True


def one_line(text: str) -> str:
    """Vapi's parser breaks on line breaks in results."""
    return re.sub(r"\s*[\r\n]+\s*", " ", text).strip()


from . import calendar, call_context, crm  # noqa: E402,F401  (registers the tools)
