"""The call-ended pipeline: fill gaps from Vapi, find the contact, then the steps (steps.py)
note | tags | slack (-> recording, once the message is posted) | fields | stage.

It runs inside the request (on Vercel, work after the response may never run) and
stays within ``PIPELINE_DEADLINE_SECONDS``. A step that failed with a retryable error,
or is still running at the deadline, is parked in the outbox and retried later; one that
can never succeed (401, 403, 404, 422) goes to the dead letters. Each step runs at most
once per call (and contact) thanks to a claim in the store; a failed step gives its
claim back so a retry can succeed. Every step's outcome is written to the call's
metadata under ``delivery``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from . import logs, metrics, recording
from .clients import Client
from .context import Context
from .ids import check_url_id, is_url_id
from .integrations import DeliveryError
from .outbox import DrainSummary, Job, Outbox, drain, drain_call
from .report import CallReport
from .steps import STEPS, StepResult, run_until
from .vapi.messages import InvalidPayload, validate
from .vapi.schemas import EndOfCallReportSchema

log = logging.getLogger(__name__)
# Fields the original service's metadata.ghl.contact may carry that GoHighLevel's upsert accepts.
UPSERT_FIELDS = ("firstName", "lastName", "name", "email", "phone", "companyName", "source",
                 "timezone", "address1", "city", "state", "postalCode", "country", "website",
                 "customFields")
INVALID_CONTACT_ID = "invalid contact id"


def receive(report: CallReport, ctx: Context, *,
            from_vapi: bool = False) -> tuple[Client, dict[str, dict[str, Any]]]:
    """Store an ended call, resolve its client, deliver it: (client, per-step outcome)."""
    client = ctx.settings.clients.resolve(report.assistant_id, report.phone_number_id,
                                          owner=ctx.client)  # a client's own secret: its call
    # A call started by /ghl/outbound-call: we know its contact (only worth a read if
    # some client has somewhere to deliver to).
    if not (report.contact_id or report.contact_id_invalid) and ctx.integrations.any:
        started_here = ctx.state.get_call_contact(report.call_id) or {}
        if started_here.get("contactId"):
            report = with_contact(report, started_here["contactId"])
            client = (ctx.client
                      or ctx.settings.clients.by_name(started_here.get("client") or "") or client)
    logs.bind(call_id=report.call_id, client=client.name)
    log.debug("[END_OF_CALL] Report received callId=%s client=%s outcome=%s contact=%s",
              report.call_id, client.name, report.outcome, "yes" if report.contact_id else "no")
    ctx = dataclasses.replace(ctx, client=client, call_id=report.call_id)
    if not (ctx.integrations.ghl(client) or ctx.integrations.slack(client)):
        # Nothing to deliver: one write says it all.
        return client, _record(report, ctx, None, _unconfigured(client), summary=True)
    # Stored before any outside call, so a crash mid-delivery loses nothing. The call must be
    # this client's (CallBelongsToAnotherClient: nothing stored, nothing delivered).
    ctx.state.record_call(report.call_id, summary=report.summary, metadata=report.to_metadata(),
                          client=client.name)
    return client, run(report, ctx, from_vapi=from_vapi)


def with_contact(report: CallReport, contact_id: object) -> CallReport:
    """``report`` for a contact id read elsewhere (the store, a job), checked as in a payload."""
    if is_url_id(contact_id):
        return dataclasses.replace(report, contact_id=contact_id, contact_id_invalid=False)
    return dataclasses.replace(report, contact_id=None, contact_id_invalid=True)


def _unconfigured(client: Client) -> dict[str, StepResult]:
    no_ghl = StepResult("skipped", 0, f"GoHighLevel is not configured for {client.name}")
    return {"note": no_ghl, "tags": no_ghl,
            "slack": StepResult("skipped", 0, f"Slack is not configured for {client.name}")}


def replay(call_id: str, ctx: Context) -> tuple[Client, dict[str, dict[str, Any]]] | None:
    """Read a call from Vapi and deliver it again; None if Vapi has no such call.

    Safe to repeat: the claims skip what was already delivered. Raises ``DeliveryError``
    when Vapi cannot be read (``ctx.integrations.vapi`` must be set).
    """
    call = ctx.integrations.vapi.get_call(call_id)
    if call is None:
        return None
    return receive(report_from_call(call), ctx, from_vapi=True)


def run(report: CallReport, ctx: Context, *, from_vapi: bool = False) -> dict[str, dict[str, Any]]:
    """Deliver an ended call for ``ctx.client``; the per-step outcome, also stored."""
    deadline = time.monotonic() + ctx.settings.pipeline_deadline
    client = ctx.client
    no_slack = None if ctx.integrations.slack(client) else _unconfigured(client)["slack"]
    if not from_vapi:  # a call just read from Vapi has no more to give
        report = fill_gaps(report, ctx)
    contact_id, no_contact = resolve_contact(report, client, ctx)

    def step(name: str) -> Callable[[], StepResult]:
        return lambda: STEPS[name](report, client, contact_id, ctx)

    todo = {"note": no_contact or step("note"), "tags": no_contact or step("tags"),
            "slack": no_slack or step("slack")}
    if client.uploads_recording and not no_slack:
        todo["slack"], todo["recording"] = recording.after(
            todo["slack"], step("recording"),
            waiting=lambda: StepResult("pending", 0, "waits for the Slack message"))
    if client.field_map or client.call_fields:
        todo["fields"] = no_contact or step("fields")
    if client.stage_map:
        todo["stage"] = no_contact or step("stage")
    results = _park_undelivered(report, ctx, contact_id, run_until(deadline, todo))
    return _record(report, ctx, contact_id, results)


def _record(report: CallReport, ctx: Context, contact_id: str | None,
            results: dict[str, StepResult], *, summary: bool = False) -> dict[str, dict[str, Any]]:
    delivery = {name: result.to_dict() for name, result in results.items()}
    metrics.deliveries({name: result.status for name, result in results.items()})
    metadata = {**report.to_metadata(), "client": ctx.client.name,
                "contact_id": contact_id or report.contact_id, "delivery": delivery}
    counted = [f"step-{result.status}" for result in results.values()]  # the hourly picture
    if summary:
        ctx.state.record_call(report.call_id, summary=report.summary, metadata=metadata,
                              client=ctx.client.name, count=counted)
    else:
        ctx.state.store_metadata(report.call_id, metadata, count=counted)
    log.info("[END_OF_CALL] Delivered callId=%s client=%s outcome=%s %s", report.call_id,
             ctx.client.name, report.outcome,
             " ".join(f"{name}={result.status}" for name, result in results.items()))
    return delivery


def outbox(ctx: Context) -> Outbox:
    return Outbox(ctx.state, max_attempts=ctx.settings.retry_max_attempts,
                  base_delay=ctx.settings.retry_base_delay)


def _park_undelivered(report: CallReport, ctx: Context, contact_id: str | None,
                      results: dict[str, StepResult]) -> dict[str, StepResult]:
    """Failed and still-running steps go to the outbox; what it made of them replaces them."""
    parked = dict(results)
    for step, result in results.items():
        if result.status in ("failed", "pending"):
            job = outbox(ctx).park_new(
                Job(call_id=report.call_id, step=step, client=ctx.client.name,
                    report=report.to_dict(), contact_id=contact_id),
                result.last_error, retryable=result.retryable)
            parked[step] = _as_result(job, result.retryable)
    return parked


def _as_result(job: Job, retryable: bool) -> StepResult:
    return StepResult("dead" if job.dead_at else "parked", job.attempts, job.last_error,
                      retryable, job.due_at or None)


def redeliver(job: Job, ctx: Context) -> tuple[bool, str | None, bool]:
    """One more try of a parked step: (delivered, error, retryable)."""
    report = CallReport.from_dict(job.report)
    client = (ctx.settings.clients.by_name(job.client)
              or ctx.settings.clients.resolve(report.assistant_id, report.phone_number_id))
    ctx = dataclasses.replace(ctx, client=client, call_id=job.call_id)
    logs.bind(request_id=ctx.request_id, call_id=job.call_id, client=client.name)
    contact_id, result = job.contact_id, None
    if contact_id is not None:
        report = with_contact(report, contact_id)
        contact_id = report.contact_id
    if job.step not in ("slack", "recording") and not contact_id:
        contact_id, result = resolve_contact(report, client, ctx)
    if result is None:
        result = STEPS[job.step](report, client, contact_id, ctx)
    return result.done, result.last_error, result.retryable


def drain_outbox(ctx: Context, *, progress: Callable[[Job, str], None] | None = None,
                 call_id: str | None = None, **options: Any) -> DrainSummary:
    """One pass of the outbox (options: see ``outbox.drain``), or with ``call_id`` every
    parked or dead step of that call, now; its summary."""
    def after(job: Job, outcome: str) -> None:
        _update_delivery(ctx, job, outcome)
        metrics.retried(job.step, outcome)
        if progress:
            progress(job, outcome)

    if call_id is not None:
        return drain_call(outbox(ctx), call_id, lambda job: redeliver(job, ctx), progress=after)
    return drain(outbox(ctx), lambda job: redeliver(job, ctx), progress=after, **options)


def _update_delivery(ctx: Context, job: Job, outcome: str) -> None:
    """Show a retried step's latest state in the call's metadata (while it is kept)."""
    metadata = ctx.state.get_metadata(job.call_id)
    if metadata is None:
        return
    result = (StepResult("ok", job.attempts + 1) if outcome == "delivered"
              else _as_result(job, job.dead_at is None))
    metadata.setdefault("delivery", {})[job.step] = result.to_dict()
    ctx.state.store_metadata(job.call_id, metadata, count=[f"step-{result.status}"])


def fill_gaps(report: CallReport, ctx: Context) -> CallReport:
    """Only if the contact id or the summary is missing: read the call from Vapi, once."""
    vapi = ctx.integrations.vapi
    if ((report.contact_id or report.contact_id_invalid) and report.summary) or vapi is None:
        return report
    try:
        call = vapi.get_call(report.call_id)
    except DeliveryError as exc:
        log.warning("[METADATA_PULL] Vapi call read failed callId=%s: %s", report.call_id, exc)
        return report
    if call is None:
        return report
    try:
        fetched = report_from_call(call)
    except InvalidPayload as exc:
        log.warning("[METADATA_PULL] Unusable call from Vapi callId=%s fields=%s",
                    report.call_id, sorted(exc.details))
        return report
    contact = ("contact_id", "contact_id_invalid")
    gaps = {f.name: getattr(fetched, f.name) for f in dataclasses.fields(report)
            if f.name not in contact and not getattr(report, f.name) and getattr(fetched, f.name)}
    if not (report.contact_id or report.contact_id_invalid) and (
            fetched.contact_id or fetched.contact_id_invalid):  # the pair, or neither
        gaps |= {name: getattr(fetched, name) for name in contact}
    if "ended_reason" in gaps:
        gaps["outcome"] = fetched.outcome
    log.info("[METADATA_PULL] Filled from Vapi callId=%s fields=%s", report.call_id, sorted(gaps))
    return dataclasses.replace(report, **gaps)


def report_from_call(call: dict[str, Any]) -> CallReport:
    """A ``CallReport`` from ``GET /call/{id}`` (the call carries what an EOCR would)."""
    keys = ("analysis", "artifact", "endedReason", "startedAt", "endedAt", "cost", "customer",
            "summary", "transcript", "recordingUrl", "stereoRecordingUrl")
    message = {"type": "end-of-call-report", "call": call,
               **{key: call[key] for key in keys if call.get(key) is not None}}
    return CallReport.from_message(validate(EndOfCallReportSchema, message))


def resolve_contact(report: CallReport, client: Client,
                    ctx: Context) -> tuple[str | None, StepResult | None]:
    """(contact id, why CRM steps cannot run). Metadata id, else upsert, else phone lookup."""
    ghl = ctx.integrations.ghl(client)
    if ghl is None:
        return None, StepResult("skipped", 0, f"GoHighLevel is not configured for {client.name}")
    if report.contact_id_invalid:
        # The value stays out of the log: it is whatever the payload carried.
        log.warning("[GHL] Invalid contact id callId=%s client=%s: no CRM request, note and"
                    " tags skipped", report.call_id, client.name)
        return None, StepResult("skipped", 0, INVALID_CONTACT_ID)
    if report.contact_id:
        return report.contact_id, None
    try:
        if report.ghl_contact:
            fields = {k: v for k, v in report.ghl_contact.items() if k in UPSERT_FIELDS}
            return _contact_id(ghl.upsert_contact(fields)), None
        if not report.customer_number:
            return None, StepResult("skipped", 0, "no contact id and no customer phone number")
        found = ghl.find_contact_by_phone(report.customer_number)
        if found:
            return _contact_id(found), None
        if not ctx.settings.ghl_create_contacts:
            return None, StepResult("skipped", 0, "no contact with the caller's number"
                                                  " (GHL_CREATE_CONTACTS=false)")
        created = ghl.upsert_contact({"phone": report.customer_number, "name": report.lead_name,
                                      "email": report.lead_email, "source": "Vapi call"})
        return _contact_id(created), None
    except (DeliveryError, ValueError) as exc:
        log.warning("[GHL] Contact lookup failed callId=%s client=%s: %s", report.call_id,
                    client.name, exc)
        return None, StepResult.failed(exc)


def _contact_id(contact: dict[str, Any]) -> str:
    return check_url_id(contact.get("id"), "GoHighLevel contact id")


