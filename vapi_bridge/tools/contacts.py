"""The caller's CRM contact, resolved once per call and kept with the call.

While a tool runs the caller hears silence, and every CRM tool needs the contact of the person
on the line before its own request. So that contact is found once per call and kept in the
store under the call and the client (``StateStore.keep_caller_contact``, the store's TTL):
a later tool of the same call makes only its own request. Where the id comes from, first found:

1. the one kept for this call and client;
2. the id the call carries (``ghlContactId``/``contactId`` in its variables or metadata,
   ``customer.externalId``), read as the call-ended pipeline reads it;
3. the record ``/ghl/outbound-call`` kept when it started the call, if it names this client
   and this client's location;
4. the tool's own search (GoHighLevel's duplicate search within the client's location, the
   contact created if unknown and creating is allowed); what it finds is kept.

Only for the caller: a ``phone`` naming another number, or an email alone, searches as
before and keeps nothing. A kept id GoHighLevel no longer knows (404, or the 400 "not found"
it answers for an unknown contact) or will not show this client (403, or a record of another
location) is forgotten, searched for again, and the tool's request made once more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..context import Context
from ..ids import is_url_id
from ..integrations import DeliveryError
from ..integrations.ghl import GhlClient
from ..logs import cut, redact
from ..phones import to_e164
from . import client_key, parallel

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Contact:
    id: str
    record: dict[str, Any] | None = None  # as the search answered it; None for a kept id
    kept: bool = False  # from the store, the call or the outbound record: may be stale


class NotThisClients(Exception):
    """A tool read a kept contact and found it in another location: not to be used."""


def with_contact(ctx: Context, ghl: GhlClient, phone: str | None,
                 search: Callable[[], dict[str, Any] | None],
                 use: Callable[[Contact], T]) -> T | None:
    """``use(contact)`` for the contact with ``phone``: the caller's kept one when ``phone``
    is the caller's number, else what ``search()`` finds (``None`` if nothing)."""
    call = _callers(ctx, phone)
    if call is not None:
        kept = _kept(ctx, ghl, call)
        if kept is not None:
            try:
                return use(Contact(kept, kept=True))
            except (DeliveryError, NotThisClients) as exc:
                if not gone(exc):
                    raise
                ctx.state.forget_caller_contact(*call)
                log.info("[TOOLS] The caller's kept contact is not usable (%s): searching again"
                         " requestId=%s callId=%s", redact(cut(str(exc), 200)), ctx.request_id,
                         ctx.call_id)
    found = search()
    if found is None:
        return None
    contact = Contact(ghl_id(found), found)
    if call is not None:
        ctx.state.keep_caller_contact(*call, contact.id)
    return use(contact)


def ghl_id(record: dict[str, Any]) -> str:
    value = record.get("id")
    if not is_url_id(value):
        raise DeliveryError("ghl", "answered without a usable id", retryable=False)
    return value


def display_name(contact: dict[str, Any]) -> str | None:
    full = " ".join(str(contact.get(k)).strip() for k in ("firstName", "lastName")
                    if contact.get(k))
    name = contact.get("name") or contact.get("contactName") or full
    return name if isinstance(name, str) and name.strip() else None


def name_of(ghl: GhlClient, contact: Contact) -> str | None:
    """The contact's name; a kept id comes without its record: read then (one request)."""
    record = contact.record if contact.record is not None else (
        ghl.request("GET", "/contacts/{}", contact.id).get("contact") or {})
    return display_name(record)


def read_with_notes(ghl: GhlClient, found: Contact) -> tuple[dict[str, Any], list[Any]]:
    """The whole contact and its notes (``lookup_contact``): two independent reads, at once.
    A kept id has no record, and the duplicate search's answer is not documented: the contact
    is read whole unless the search's answer has its tags."""
    reads = [lambda: ghl.request("GET", "/contacts/{}/notes", found.id).get("notes") or []]
    if "tags" not in (found.record or {}):
        reads.append(lambda: ghl.request("GET", "/contacts/{}", found.id).get("contact"))
    notes, *whole = parallel(*reads)
    record = (whole[0] if whole else None) or found.record or {}
    if found.kept and record.get("locationId") not in (None, ghl.location_id):
        raise NotThisClients("another location's contact")  # never read out to this client
    return record, notes


def _callers(ctx: Context, phone: str | None) -> tuple[str, str] | None:
    """(call id, client digest) when ``phone`` is the caller's number in a known call."""
    if not (phone and ctx.call_id and ctx.client and ctx.customer_number):
        return None
    if to_e164(ctx.customer_number, ctx.client.default_country) != phone:
        return None
    return ctx.call_id, client_key(ctx)


def _kept(ctx: Context, ghl: GhlClient, call: tuple[str, str]) -> str | None:
    kept = ctx.state.caller_contact(*call)
    if is_url_id(kept):
        return kept
    if ctx.contact_id:  # checked (ids.is_url_id) when the context was made
        return ctx.contact_id
    started = ctx.state.get_call_contact(ctx.call_id) or {}
    if (started.get("client"), started.get("locationId")) == (ctx.client.name, ghl.location_id) \
            and is_url_id(started.get("contactId")):
        return started["contactId"]
    return None


def gone(exc: Exception) -> bool:
    """Whether a failure says the contact is not (or no longer) there for this client."""
    if isinstance(exc, NotThisClients):
        return True
    # 403: a location the token cannot reach (reference A7), so not this client's contact.
    status = getattr(exc, "status", None)
    return status in (403, 404) or (status == 400 and "not found" in str(exc).lower())
