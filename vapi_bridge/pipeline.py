"""The call-ended pipeline: fill gaps from Vapi, find the contact, then note | tags | slack.

It runs inside the request (on Vercel, work after the response may never run) and
stays within ``PIPELINE_DEADLINE_SECONDS``: a step still running then is recorded
``pending``, not dropped. Each step runs at most once per call (and contact) thanks
to a claim in the store; a failed step gives its claim back so a later delivery can
succeed. Every step's outcome is written to the call's metadata under ``delivery``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from . import render
from .clients import Client
from .context import Context
from .integrations import DeliveryError
from .storage import check_id
from .vapi.messages import CallReport, EndOfCallReportSchema, InvalidPayload, validate

log = logging.getLogger(__name__)
# Fields the original service's metadata.ghl.contact may carry that GoHighLevel's upsert accepts.
UPSERT_FIELDS = ("firstName", "lastName", "name", "email", "phone", "companyName", "source",
                 "timezone", "address1", "city", "state", "postalCode", "country", "website",
                 "customFields")


@dataclass(frozen=True)
class StepResult:
    status: str  # ok | pending | failed | skipped
    attempts: int = 0
    last_error: str | None = None

    @classmethod
    def failed(cls, error: Exception) -> StepResult:
        return cls("failed", 1, str(error)[:300])


def receive(report: CallReport, ctx: Context, *,
            from_vapi: bool = False) -> tuple[Client, dict[str, dict[str, Any]]]:
    """Store an ended call, resolve its client, deliver it: (client, per-step outcome)."""
    ctx.state.record_call(report.call_id, summary=report.summary, metadata=report.to_metadata())
    client = ctx.settings.clients.resolve(report.assistant_id, report.phone_number_id)
    if not report.contact_id:  # a call started by /ghl/outbound-call: we know its contact
        started_here = ctx.state.get_call_contact(report.call_id) or {}
        if started_here.get("contactId"):
            report = dataclasses.replace(report, contact_id=started_here["contactId"])
            client = ctx.settings.clients.by_name(started_here.get("client") or "") or client
    log.info("[END_OF_CALL] Report received callId=%s client=%s outcome=%s contact=%s",
             report.call_id, client.name, report.outcome, "yes" if report.contact_id else "no")
    ctx = dataclasses.replace(ctx, client=client, call_id=report.call_id)
    return client, run(report, ctx, from_vapi=from_vapi)


def run(report: CallReport, ctx: Context, *, from_vapi: bool = False) -> dict[str, dict[str, Any]]:
    """Deliver an ended call for ``ctx.client``; the per-step outcome, also stored."""
    deadline = time.monotonic() + ctx.settings.pipeline_deadline
    client = ctx.client
    if not from_vapi:  # a call just read from Vapi has no more to give
        report = fill_gaps(report, ctx)
    contact_id, no_contact = resolve_contact(report, client, ctx)
    slack = ctx.integrations.slack(client)
    steps = {
        "note": no_contact or (lambda: _note(report, client, contact_id, ctx)),
        "tags": no_contact or (lambda: _tags(report, client, contact_id, ctx)),
        "slack": (lambda: _slack(report, client, contact_id, ctx)) if slack else StepResult(
            "skipped", 0, f"Slack is not configured for {client.name}"),
    }
    results = _run_until(deadline, steps)
    delivery = {name: dataclasses.asdict(result) for name, result in results.items()}
    ctx.state.store_metadata(report.call_id, {**report.to_metadata(), "client": client.name,
                                              "contact_id": contact_id or report.contact_id,
                                              "delivery": delivery})
    log.info("[END_OF_CALL] Delivered callId=%s client=%s %s", report.call_id, client.name,
             " ".join(f"{name}={result.status}" for name, result in results.items()))
    return delivery


def fill_gaps(report: CallReport, ctx: Context) -> CallReport:
    """Only if the contact id or the summary is missing: read the call from Vapi, once."""
    vapi = ctx.integrations.vapi
    if (report.contact_id and report.summary) or vapi is None:
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
    gaps = {f.name: getattr(fetched, f.name) for f in dataclasses.fields(report)
            if not getattr(report, f.name) and getattr(fetched, f.name)}
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
    return check_id(contact.get("id"), "GoHighLevel contact id")


def _run_until(deadline: float, steps: dict[str, Any]) -> dict[str, StepResult]:
    """Run the steps in parallel; whatever has not finished by the deadline is pending.

    A step given as a ``StepResult`` is already decided and costs no thread.
    """
    todo = {name: step for name, step in steps.items() if not isinstance(step, StepResult)}
    results = {name: step for name, step in steps.items() if isinstance(step, StepResult)}
    if todo:
        pool = ThreadPoolExecutor(max_workers=len(todo), thread_name_prefix="delivery")
        futures = {name: pool.submit(_guarded, name, step) for name, step in todo.items()}
        wait(futures.values(), timeout=max(0.0, deadline - time.monotonic()))
        pool.shutdown(wait=False)  # a late step finishes on its own; its claim stops a twin
        results |= {name: future.result() if future.done()
                    else StepResult("pending", 1, "still running at the pipeline deadline")
                    for name, future in futures.items()}
    return {name: results[name] for name in steps}


def _guarded(name: str, step) -> StepResult:
    try:
        return step()
    except Exception as exc:  # one broken step must not lose the others' outcomes
        log.exception("[END_OF_CALL] Step %s crashed", name)
        return StepResult.failed(exc)


def _once(ctx: Context, kind: str, ids: tuple[str, ...], deliver) -> StepResult:
    """Claim, deliver, mark done; give the claim back if delivery failed."""
    if not ctx.state.claim(kind, *ids):
        if ctx.state.is_done(kind, *ids):
            return StepResult("ok", 0)  # delivered by an earlier delivery of this report
        return StepResult("pending", 0, "another delivery holds the claim")
    try:
        deliver()
    except DeliveryError as exc:
        ctx.state.release(kind, *ids)
        log.warning("[END_OF_CALL] %s failed callId=%s retryable=%s: %s", kind, ids[0],
                    exc.retryable, exc)
        return StepResult.failed(exc)
    ctx.state.mark_done(kind, *ids)
    return StepResult("ok", 1)


def _note(report: CallReport, client: Client, contact_id: str, ctx: Context) -> StepResult:
    ghl = ctx.integrations.ghl(client)
    body = render.note_body(report, ctx.settings.ghl_note_transcript_chars)
    return _once(ctx, "note", (report.call_id, contact_id), lambda: ghl.add_note(contact_id, body))


def _tags(report: CallReport, client: Client, contact_id: str, ctx: Context) -> StepResult:
    ghl = ctx.integrations.ghl(client)
    outcome_tag = client.outcome_tags.get(report.outcome)
    tags = list(dict.fromkeys([*report.ghl_tags, *([outcome_tag] if outcome_tag else [])]))
    if not tags:
        return StepResult("skipped", 0, "no tags for this call")
    return _once(ctx, "tags", (report.call_id, contact_id), lambda: ghl.add_tags(contact_id, tags))


def _slack(report: CallReport, client: Client, contact_id: str | None,
           ctx: Context) -> StepResult:
    slack = ctx.integrations.slack(client)
    link = render.contact_url(ctx.settings.ghl_app_base_url, client, contact_id)
    text, blocks = render.slack_message(report, client, contact_link=link,
                                        mention=ctx.settings.slack_mention)
    return _once(ctx, "slack", (report.call_id,), lambda: slack.post(text, blocks))
