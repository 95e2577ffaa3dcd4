"""One function per Vapi message type, in one registry: a new type is a function and a line.

Types not in the registry are acknowledged with ``{"status": "ignored"}``: Vapi adds
types, and an error would only make it retry or drop them.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from marshmallow import Schema

from . import logs, pipeline, tools
from .context import Context
from .ids import is_url_id
from .report import CallReport, find_contact_id
from .vapi.messages import ToolCall, tool_calls, validate
from .vapi.schemas import (
    EndOfCallReportSchema,
    FunctionCallSchema,
    MessageSchema,
    StatusUpdateSchema,
    ToolCallsSchema,
)

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Context], dict[str, Any]]
HANDLERS: dict[str, tuple[type[Schema], Handler]] = {}
RECEIVED = {"status": "received"}


def handles(message_type: str, schema: type[Schema] = MessageSchema):
    def register(handler: Handler) -> Handler:
        HANDLERS[message_type] = (schema, handler)
        return handler

    return register


def acts_on(message_type: str) -> bool:
    return message_type in HANDLERS


def dispatch(message: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Validate ``message`` for its type (``acts_on`` it) and answer it."""
    schema, handler = HANDLERS[message["type"]]
    message = validate(schema, message)
    ctx = dataclasses.replace(ctx, call_id=(message.get("call") or {}).get("id"))
    return handler(message, ctx)


@handles("end-of-call-report", EndOfCallReportSchema)
def end_of_call_report(message: dict[str, Any], ctx: Context) -> dict[str, Any]:
    pipeline.receive(CallReport.from_message(message), ctx)
    return RECEIVED


@handles("status-update", StatusUpdateSchema)
def status_update(message: dict[str, Any], ctx: Context) -> dict[str, Any]:
    status = message["status"]
    if ctx.call_id:
        moved = ctx.state.advance_status(ctx.call_id, status)
        log.info("[STATUS] callId=%s status=%s %s", ctx.call_id, logs.cut(status),
                 "recorded" if moved else "not newer, kept the stored one")
    else:
        log.info("[STATUS] status=%s without a call id endedReason=%s", logs.cut(status),
                 logs.cut(message.get("endedReason")))
    return RECEIVED


@handles("tool-calls", ToolCallsSchema)
def tool_calls_message(message: dict[str, Any], ctx: Context) -> dict[str, Any]:
    return {"results": tools.run_all(tool_calls(message), _owned(_for_the_call(message, ctx)))}


def _for_the_call(message: dict[str, Any], ctx: Context) -> Context:
    """The context of a call's tools: its client, who is on the line, and their CRM contact
    where the call's creator named it (as the call-ended pipeline reads it)."""
    call = message.get("call") or {}
    customer = message.get("customer") or call.get("customer") or {}
    client = ctx.settings.clients.resolve(call.get("assistantId"), call.get("phoneNumberId"),
                                          owner=ctx.client)
    logs.bind(client=client.name)
    contact_id = find_contact_id(message)
    return dataclasses.replace(ctx, client=client, customer_number=customer.get("number"),
                               contact_id=contact_id if is_url_id(contact_id) else None)


def _owned(ctx: Context) -> Context:
    """Tools run only for the client that owns the call (the first to record it), else 409."""
    if ctx.call_id:
        ctx.state.own_call(ctx.call_id, ctx.client.name)
    return ctx


@handles("function-call", FunctionCallSchema)
def function_call(message: dict[str, Any], ctx: Context) -> dict[str, Any]:
    call = message["functionCall"]
    answer = tools.run(ToolCall.from_item(call), _owned(_for_the_call(message, ctx)))
    # The legacy format only reads "result": an error is said as the result.
    return {"result": answer.get("result", answer.get("error"))}


@handles("assistant-request")
def assistant_request(message: dict[str, Any], ctx: Context) -> dict[str, Any]:
    # Vapi waits at most 7.5 s for this answer: settings only, no outside calls.
    if ctx.settings.vapi_assistant_id:
        return {"assistantId": ctx.settings.vapi_assistant_id}
    log.warning("[WEBHOOK] assistant-request but VAPI_ASSISTANT_ID is not set")
    return {"error": "Sorry, this number is not set up to take calls right now."}


@handles("transfer-destination-request")
def transfer_destination_request(message: dict[str, Any], ctx: Context) -> dict[str, Any]:
    number = ctx.settings.vapi_transfer_number
    if number:
        return {"destination": {"type": "number", "number": number},
                "message": {"type": "request-start", "content": "Transferring you now."}}
    log.warning("[WEBHOOK] transfer-destination-request but VAPI_TRANSFER_NUMBER is not set")
    return {"error": "Sorry, I cannot transfer this call right now."}
