"""The contact's opportunity in a pipeline, for ``update_stage`` and the call-ended ``stage``
step: asked for explicitly, read to the last page, chosen the same way whatever order
GoHighLevel answers in, then moved to a stage (or created in it).

``GET /opportunities/search`` documents ``order`` without a default and ``status`` without a
default (``open|won|lost|abandoned|all``), and ``limit`` 20 by default, "maximum up to 100".
So each request names ``location_id``, ``contact_id``, ``pipeline_id``, ``status=all`` and
``limit=100``; the next page is asked for with the answer's ``meta.startAfter`` and
``meta.startAfterId`` (the spec's ``startAfter``/``startAfterId`` query parameters, as in its
``meta.nextPageUrl`` example) until ``meta.total`` are read or a page brings nothing new.

The caller hears silence while a tool runs, so ``update_stage`` keeps the opportunity it left
(id and stage) with the call: the same call's next ``update_stage`` for that contact and
pipeline is one ``PUT``, or nothing when the kept stage is the one asked for. The call-ended
step searches as before: by then a GoHighLevel workflow may have moved the opportunity, and its
never-backwards rule must judge the stage GoHighLevel has, not the one a tool left.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from ..context import Context
from ..ids import is_url_id
from ..integrations import DeliveryError
from ..integrations.ghl import GhlClient
from ..logs import cut, redact
from ..vapi.schemas import parse_time
from . import client_key
from .contacts import gone

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # the spec's maximum for ``limit``
MAX_PAGES = 10  # 1,000 opportunities of one contact in one pipeline: enough, and bounded
_NEVER = datetime.min.replace(tzinfo=UTC)


class Kept(NamedTuple):
    """An opportunity as a tool last left it: its id and the stage it is in."""
    id: str
    stage: str


def put_in_stage(ghl: GhlClient, contact_id: str, pipeline_id: str, stage_id: str,
                 name: str | Callable[[], str | None], *, order: list[str] | None = None) -> str:
    """The contact's opportunity (``find_opportunity``) moved to ``stage_id``, or one created
    there named ``name`` (a function when the name costs a request: called only then):
    "created", "moved", "already" there, or "later" (``order``, the pipeline's stage ids, puts
    it past ``stage_id``: it is not moved back)."""
    return place(ghl, contact_id, pipeline_id, stage_id, name, order=order)[0]


def place(ghl: GhlClient, contact_id: str, pipeline_id: str, stage_id: str,
          name: str | Callable[[], str | None], *, order: list[str] | None = None,
          kept: Kept | None = None) -> tuple[str, Kept | None]:
    """``put_in_stage``'s outcome, and the opportunity and the stage it is in now (None when
    GoHighLevel gave no usable id). With ``kept`` (found earlier in the call) nothing is
    searched: its stage decides, and a move is one ``PUT``, which raises if it is gone."""
    if kept is None:
        chosen = find_opportunity(ghl, contact_id, pipeline_id)
        if chosen is None:
            body = ghl.request("POST", "/opportunities/", json={
                "pipelineId": pipeline_id, "locationId": ghl.location_id,
                "name": name if isinstance(name, str) else name(),
                "status": "open", "contactId": contact_id, "pipelineStageId": stage_id})
            made = body.get("opportunity") if isinstance(body.get("opportunity"), dict) else {}
            return "created", Kept(made["id"], stage_id) if is_url_id(made.get("id")) else None
        current = chosen.get("pipelineStageId")
        kept = Kept(chosen.get("id"), current if isinstance(current, str) else "")
    if kept.stage == stage_id:
        return "already", kept if is_url_id(kept.id) else None
    if order and kept.stage in order and stage_id in order \
            and order.index(kept.stage) > order.index(stage_id):
        return "later", kept if is_url_id(kept.id) else None
    if not is_url_id(kept.id):
        raise DeliveryError("ghl", "answered without a usable id", retryable=False)
    ghl.request("PUT", "/opportunities/{}", kept.id, json={"pipelineStageId": stage_id})
    return "moved", Kept(kept.id, stage_id)


def put_in_stage_for_call(ctx: Context, ghl: GhlClient, contact_id: str, pipeline_id: str,
                          stage_id: str, name: Callable[[], str | None]) -> str:
    """``put_in_stage`` for a tool: the opportunity moved (or found there, or created) is kept
    with the call (``StateStore.keep_opportunity``), so a later ``update_stage`` of the same
    call, client, contact and pipeline skips the search. A kept one GoHighLevel no longer has
    for this client (``contacts.gone``) is forgotten and searched for again."""
    if not ctx.call_id or ctx.client is None:
        return put_in_stage(ghl, contact_id, pipeline_id, stage_id, name)
    ids = (ctx.call_id, client_key(ctx), contact_id, pipeline_id)
    kept = ctx.state.kept_opportunity(ids)
    before = Kept(*kept) if kept is not None and is_url_id(kept[0]) else None
    try:
        done, now = place(ghl, contact_id, pipeline_id, stage_id, name, kept=before)
    except DeliveryError as exc:
        if before is None or not gone(exc):
            raise
        ctx.state.forget_opportunity(ids)
        log.info("[TOOLS] update_stage's kept opportunity is not usable (%s): searching again"
                 " requestId=%s callId=%s", redact(cut(str(exc), 200)), ctx.request_id,
                 ctx.call_id)
        before = None
        done, now = place(ghl, contact_id, pipeline_id, stage_id, name)
    if now is not None and now != before:
        ctx.state.keep_opportunity(ids, now.id, now.stage)
    return done


def find_opportunity(ghl: GhlClient, contact_id: str, pipeline_id: str) -> dict[str, Any] | None:
    """The contact's open opportunity in the pipeline; else its most recently updated one."""
    return choose(search_all(ghl, contact_id, pipeline_id), contact_id, pipeline_id)


def search_all(ghl: GhlClient, contact_id: str, pipeline_id: str) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"location_id": ghl.location_id, "contact_id": contact_id,
                              "pipeline_id": pipeline_id, "status": "all", "limit": PAGE_SIZE}
    found: dict[str, dict[str, Any]] = {}
    for _ in range(MAX_PAGES):
        body = ghl.request("GET", "/opportunities/search", params=params)
        page = [o for o in body.get("opportunities") or [] if isinstance(o, dict)]
        new = {o["id"]: o for o in page if isinstance(o.get("id"), str) and o["id"] not in found}
        found.update(new)
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        total = meta.get("total")
        cursor = (meta.get("startAfter"), meta.get("startAfterId"))
        if not new or None in cursor or (isinstance(total, int | float) and len(found) >= total):
            return list(found.values())
        params = {**params, "startAfter": cursor[0], "startAfterId": cursor[1]}
    log.warning("[TOOLS] update_stage read %s pages of opportunities and stopped", MAX_PAGES)
    return list(found.values())


def choose(opportunities: list[dict[str, Any]], contact_id: str,
           pipeline_id: str) -> dict[str, Any] | None:
    """Open first, then the latest ``updatedAt`` (``createdAt`` if none), then the id: one
    answer for the same set, whatever the order it came in."""
    mine = [o for o in opportunities
            if o.get("pipelineId", pipeline_id) == pipeline_id
            and o.get("contactId", contact_id) == contact_id]
    return max(mine, default=None, key=lambda o: (
        o.get("status") == "open",
        parse_time(o.get("updatedAt")) or parse_time(o.get("createdAt")) or _NEVER,
        str(o["id"])))
