"""A call's own page, ``/calls/<callId>``, and its "Deliver again" button (ADMIN_TOKEN).

Signed in exactly as the status page (``admin.guard``: session or Basic, CSRF on POST).
The page shows what the store still holds of the call: its metadata (client, the caller's
last 4 digits, times, outcome, summary, each step's delivery), the contact's link in
GoHighLevel, and the tool calls made during it. "Deliver again" runs the call's parked and
dead steps now through the outbox (``pipeline.drain_outbox``), the one delivery path.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, url_for
from werkzeug.wrappers import Response

from . import pipeline, render
from .admin import add_headers, csrf_token, error_kind, guard, mask_number
from .context import Context, current_context
from .outbox import STEPS
from .storage import StorageError, check_id

log = logging.getLogger(__name__)
bp = Blueprint("calls", __name__, template_folder="templates")
bp.before_request(guard)
bp.after_request(add_headers)
UNDELIVERED = ("parked", "dead", "failed", "pending")  # what "Deliver again" retries


@bp.get("/calls/<call_id>")
def call(call_id: str) -> tuple[str, int]:
    call_id = _checked(call_id)
    ctx = current_context()
    try:
        metadata = ctx.state.get_metadata(call_id)
        tool_calls = ctx.state.tool_calls(call_id) if metadata is not None else []
    except StorageError as exc:
        log.warning("[ADMIN] Store unavailable while reading callId=%s (%s)", call_id,
                    error_kind(exc))
        return _page(call_id, store_error=True), 503
    if metadata is None:
        return _page(call_id, missing=True), 404
    return _page(call_id, call=_details(metadata, ctx), tool_calls=tool_calls), 200


@bp.post("/calls/<call_id>/deliver")
def deliver_again(call_id: str) -> Response:
    """The call's steps that are not ok, again, as the outbox would run them."""
    call_id = _checked(call_id)
    ctx = current_context()
    try:
        summary = pipeline.drain_outbox(ctx, call_id=call_id)
    except StorageError as exc:
        log.warning("[ADMIN] Deliver again failed callId=%s, store unavailable (%s)", call_id,
                    error_kind(exc))
        flash("Store unavailable: nothing was delivered again.", "error")
        return redirect(url_for(".call", call_id=call_id), 303)
    log.info("[ADMIN] Delivered again callId=%s: %s", call_id, summary)
    if not summary.seen:
        flash("Nothing to deliver again: no step of this call is parked or dead.", "ok")
    else:
        flash(f"Delivered again: {summary.delivered} delivered, {summary.parked} parked again,"
              f" {summary.dead} dead, {summary.busy} held by another delivery.",
              "error" if summary.parked or summary.dead or summary.busy else "ok")
    return redirect(url_for(".call", call_id=call_id), 303)


def _checked(call_id: str) -> str:
    """The id as a storage key allows it, else the page does not exist."""
    try:
        return check_id(call_id, "call_id")
    except ValueError:
        abort(404)


def _page(call_id: str, **values: Any) -> str:
    return render_template("admin/call.html", call_id=call_id, csrf=csrf_token(),
                           version=current_app.config["VERSION"], now=time.time(),
                           by_session=g.get("admin_session", False), **values)


def _details(metadata: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """What the page shows of the stored call; the number reduced to its last 4 digits."""
    delivery = metadata.get("delivery") or {}
    client = ctx.settings.clients.by_name(metadata.get("client") or "")
    link = (render.contact_url(ctx.settings.ghl_app_base_url, client, metadata.get("contact_id"))
            if client else None)
    steps = {step: delivery.get(step) or {} for step in STEPS}
    return {"client": metadata.get("client") or "", "caller": mask_number(
                metadata.get("customer_number")),
            "started_at": metadata.get("started_at"), "ended_at": metadata.get("ended_at"),
            "duration": render.duration(metadata.get("duration_seconds")),
            "outcome": metadata.get("outcome") or "", "ended_reason": metadata.get("ended_reason"),
            "summary": metadata.get("summary") or "", "contact_link": link, "steps": steps,
            "undelivered": any(step.get("status") in UNDELIVERED for step in steps.values())}
