"""The contact's opportunity in a pipeline, for ``update_stage`` and the call-ended ``stage``
step: asked for explicitly, read to the last page, chosen the same way whatever order
GoHighLevel answers in, then moved to a stage (or created in it).

``GET /opportunities/search`` documents ``order`` without a default and ``status`` without a
default (``open|won|lost|abandoned|all``), and ``limit`` 20 by default, "maximum up to 100".
So each request names ``location_id``, ``contact_id``, ``pipeline_id``, ``status=all`` and
``limit=100``; the next page is asked for with the answer's ``meta.startAfter`` and
``meta.startAfterId`` (the spec's ``startAfter``/``startAfterId`` query parameters, as in its
``meta.nextPageUrl`` example) until ``meta.total`` are read or a page brings nothing new.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..ids import is_url_id
from ..integrations import DeliveryError
from ..integrations.ghl import GhlClient
from ..vapi.schemas import parse_time

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # the spec's maximum for ``limit``
MAX_PAGES = 10  # 1,000 opportunities of one contact in one pipeline: enough, and bounded
_NEVER = datetime.min.replace(tzinfo=UTC)


def put_in_stage(ghl: GhlClient, contact_id: str, pipeline_id: str, stage_id: str,
                 name: str | Callable[[], str | None], *, order: list[str] | None = None) -> str:
    """The contact's opportunity (``find_opportunity``) moved to ``stage_id``, or one created
    there named ``name`` (a function when the name costs a request: called only then):
    "created", "moved", "already" there, or "later" (``order``, the pipeline's stage ids, puts
    it past ``stage_id``: it is not moved back)."""
    chosen = find_opportunity(ghl, contact_id, pipeline_id)
    if chosen is None:
        ghl.request("POST", "/opportunities/", json={
            "pipelineId": pipeline_id, "locationId": ghl.location_id,
            "name": name if isinstance(name, str) else name(),
            "status": "open", "contactId": contact_id, "pipelineStageId": stage_id})
        return "created"
    current = chosen.get("pipelineStageId")
    if current == stage_id:
        return "already"
    if order and current in order and stage_id in order \
            and order.index(current) > order.index(stage_id):
        return "later"
    if not is_url_id(chosen.get("id")):
        raise DeliveryError("ghl", "answered without a usable id", retryable=False)
    ghl.request("PUT", "/opportunities/{}", chosen["id"], json={"pipelineStageId": stage_id})
    return "moved"


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
