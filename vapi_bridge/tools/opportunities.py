"""``update_stage``'s work: the contact's opportunity in a pipeline, asked for explicitly, read
to the last page, chosen the same way whatever order GoHighLevel answers in, then moved.

``GET /opportunities/search`` documents ``order`` without a default and ``status`` without a
default (``open|won|lost|abandoned|all``), and ``limit`` 20 by default, "maximum up to 100".
So each request names ``location_id``, ``contact_id``, ``pipeline_id``, ``status=all`` and
``limit=100``; the next page is asked for with the answer's ``meta.startAfter`` and
``meta.startAfterId`` (the spec's ``startAfter``/``startAfterId`` query parameters, as in its
``meta.nextPageUrl`` example) until ``meta.total`` are read or a page brings nothing new.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from ..integrations.ghl import GhlClient
from ..vapi.schemas import parse_time
from .contacts import Contact, display_name, ghl_id

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # the spec's maximum for ``limit``
MAX_PAGES = 10  # 1,000 opportunities of one contact in one pipeline: enough, and bounded
_NEVER = datetime.min.replace(tzinfo=UTC)


def move_to_stage(ghl: GhlClient, contact: Contact, pipeline_id: str, stage_id: str,
                  note: str | None, *, unnamed: str | None) -> str:
    """The contact's opportunity into the stage (created there if it has none), then the note;
    what was done, to be said. ``unnamed`` names a new opportunity of a contact without a name."""
    chosen = find_opportunity(ghl, contact.id, pipeline_id)
    if chosen is None:
        # A kept id comes without the contact's name: read only when it is needed.
        record = contact.record if contact.record is not None else (
            ghl.request("GET", "/contacts/{}", contact.id).get("contact") or {})
        ghl.request("POST", "/opportunities/", json={
            "pipelineId": pipeline_id, "locationId": ghl.location_id,
            "name": display_name(record) or unnamed, "status": "open",
            "contactId": contact.id, "pipelineStageId": stage_id})
        said = "A new opportunity was created in that stage."
    elif chosen.get("pipelineStageId") == stage_id:
        said = "The opportunity is already in that stage."
    else:
        ghl.request("PUT", "/opportunities/{}", ghl_id(chosen), json={"pipelineStageId": stage_id})
        said = "The opportunity was moved to that stage."
    if note:
        ghl.add_note(contact.id, note)
        said += " The note is added."
    return said


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
