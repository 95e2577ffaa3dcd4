"""The call-ended steps: each one delivers one thing, at most once per call (and contact).

``STEPS`` maps a step's name to ``step(report, client, contact_id, ctx) -> StepResult``;
``pipeline.run`` runs them side by side with ``run_until`` and the outbox retries one by name.
Each step claims its mark in the store first (``once``): a twin delivery finds the claim
taken, a failed one gives it back so a retry can succeed.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from . import crm_steps, recording, render
from .clients import Client
from .context import Context
from .integrations import DeliveryError
from .report import CallReport

log = logging.getLogger(__name__)
# A step's hold on its claim while it runs: a process that dies mid-delivery frees it
# after this, for the outbox to retry (a "done" mark keeps the full store TTL).
DELIVERY_LEASE_SECONDS = 300

@dataclass(frozen=True)
class StepResult:
    status: str  # ok | pending | failed | skipped; then parked | dead once the outbox has it
    attempts: int = 0
    last_error: str | None = None
    retryable: bool = True
    due_at: float | None = None
    detail: dict[str, Any] | None = None  # what the step kept (the Slack message's thread_ts)

    @classmethod
    def failed(cls, error: Exception) -> StepResult:
        return cls("failed", 1, str(error)[:300], getattr(error, "retryable", True))

    @property
    def done(self) -> bool:
        return self.status in ("ok", "skipped")

    def to_dict(self) -> dict[str, Any]:
        """As kept in the call's metadata: when it is due again, why it cannot be."""
        data = {"status": self.status, "attempts": self.attempts, "last_error": self.last_error}
        if self.due_at:
            data["due_at"] = self.due_at
        if self.status in ("failed", "dead"):
            data["retryable"] = self.retryable
        return {**data, **(self.detail or {})}


def run_until(deadline: float, steps: dict[str, Any]) -> dict[str, StepResult]:
    """Run the steps in parallel; whatever has not finished by the deadline is pending.

    A step given as a ``StepResult`` is already decided and costs no thread.
    """
    todo = {name: step for name, step in steps.items() if not isinstance(step, StepResult)}
    results = {name: step for name, step in steps.items() if isinstance(step, StepResult)}
    if todo:
        pool = ThreadPoolExecutor(max_workers=len(todo), thread_name_prefix="delivery")
        # Each thread runs in a copy of this context: its lines keep the call's ids.
        futures = {name: pool.submit(contextvars.copy_context().run, _guarded, name, step)
                   for name, step in todo.items()}
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


def once(ctx: Context, kind: str, ids: tuple[str, ...], deliver, *,
          keeps: bool = False) -> StepResult:
    """Claim, deliver, mark done; give the claim back if delivery failed. With ``keeps``, what
    ``deliver`` returns is kept with the done mark and shown in the delivery record
    (``{"skipped": why}``: done, as skipped)."""
    if not ctx.state.claim(kind, *ids, ttl=DELIVERY_LEASE_SECONDS):
        if ctx.state.is_done(kind, *ids):
            return StepResult("ok", 0)  # delivered by an earlier delivery of this report
        return StepResult("pending", 0, "another delivery holds the claim")
    try:
        kept = deliver()
    except DeliveryError as exc:
        ctx.state.release(kind, *ids)
        log.warning("[END_OF_CALL] %s failed callId=%s retryable=%s: %s", kind, ids[0],
                    exc.retryable, exc)
        return StepResult.failed(exc)
    if not (keeps and kept):
        ctx.state.mark_done(kind, *ids)
        return StepResult("ok", 1)
    ctx.state.store_answer(kind, ids, kept)
    if "skipped" in kept:
        return StepResult("skipped", 1, kept["skipped"])
    return StepResult("ok", 1, detail=kept)


def _note(report: CallReport, client: Client, contact_id: str, ctx: Context) -> StepResult:
    ghl = ctx.integrations.ghl(client)
    body = render.note_body(report, ctx.settings.ghl_note_transcript_chars)
    return once(ctx, "note", (report.call_id, contact_id), lambda: ghl.add_note(contact_id, body))


def _tags(report: CallReport, client: Client, contact_id: str, ctx: Context) -> StepResult:
    ghl = ctx.integrations.ghl(client)
    outcome_tag = client.outcome_tags.get(report.outcome)
    tags = list(dict.fromkeys([*report.ghl_tags, *([outcome_tag] if outcome_tag else [])]))
    if not tags:
        return StepResult("skipped", 0, "no tags for this call")
    return once(ctx, "tags", (report.call_id, contact_id), lambda: ghl.add_tags(contact_id, tags))


def _slack(report: CallReport, client: Client, contact_id: str | None,
           ctx: Context) -> StepResult:
    slack = ctx.integrations.slack(client)
    link = render.contact_url(ctx.settings.ghl_app_base_url, client, contact_id)
    text, blocks = render.slack_message(report, client, contact_link=link,
                                        mention=ctx.settings.slack_mention)
    return once(ctx, "slack", (report.call_id,),
                 lambda: recording.thread(slack.post(text, blocks)), keeps=client.uploads_recording)


def _recording(report: CallReport, client: Client, contact_id: str | None,
               ctx: Context) -> StepResult:
    return once(ctx, "recording", (report.call_id,), lambda: recording.upload(report, client, ctx),
                 keeps=True)


def _fields(report: CallReport, client: Client, contact_id: str, ctx: Context) -> StepResult:
    if not crm_steps.mapped_values(report, client):
        return StepResult("skipped", 0, "no mapped value in this call")
    ghl = ctx.integrations.ghl(client)
    return once(ctx, "fields", (report.call_id, contact_id),
                 lambda: crm_steps.write_fields(report, client, contact_id, ghl))


def _stage(report: CallReport, client: Client, contact_id: str, ctx: Context) -> StepResult:
    if crm_steps.target_stage(report, client.stage_map) is None:
        return StepResult("skipped", 0, "no stage for this call")
    ghl = ctx.integrations.ghl(client)
    return once(ctx, "stage", (report.call_id, contact_id),
                 lambda: crm_steps.move_stage(report, client, contact_id, ghl))


STEPS: dict[str, Callable[..., StepResult]] = {
    "note": _note, "tags": _tags, "slack": _slack, "fields": _fields, "stage": _stage,
    "recording": _recording}
