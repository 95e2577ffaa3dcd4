"""What each feature needs of a client's GoHighLevel token, and a cheap read per read scope.

Scope names are those of the operations' ``security`` in GoHighLevel's OpenAPI spec. Write
scopes cannot be proved without writing something, so ``check`` only names them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .ghl import LATER_VERSION, GhlClient

if TYPE_CHECKING:
    from ..clients import Client

CHECK_EMAIL = "vapi-bridge-check@example.com"  # looked up, never created


@dataclass(frozen=True)
class Feature:
    name: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    optional: bool = False  # without its scope the feature is only limited, the client works


CALL_REPORTS = Feature("call reports", ("contacts.readonly",), ("contacts.write",))
CUSTOM_FIELD_KEYS = Feature("custom fields named by key", ("locations/customFields.readonly",),
                            (), optional=True)
CRM_TOOLS = Feature("CRM tools", ("contacts.readonly", "opportunities.readonly",
                                  "conversations.readonly"),
                    ("contacts.write", "opportunities.write", "conversations/message.write"))
CALL_FIELDS = Feature("call fields", ("locations/customFields.readonly",),
                      ("contacts.write",))
CALL_STAGE = Feature("call stage", ("opportunities.readonly",),
                     ("opportunities.write",))
CALENDAR_TOOLS = Feature("calendar tools", ("calendars.readonly",), ("calendars/events.write",))


def features(client: Client) -> list[Feature]:
    found = [CALL_REPORTS]
    if not any(client.ghl_incoming_webhook_urls.values()):
        found.append(CRM_TOOLS)  # API mode: the tools call GoHighLevel, not a workflow
    if client.ghl_calendar_id:
        found.append(CALENDAR_TOOLS)
    if client.field_map or client.call_fields:
        found.append(CALL_FIELDS)
    if client.stage_map:
        found.append(CALL_STAGE)
    return [*found, CUSTOM_FIELD_KEYS]


def needed(client: Client, kind: str) -> dict[str, list[Feature]]:
    """``{scope: the features needing it}`` for ``kind`` "reads" or "writes", in order."""
    scopes: dict[str, list[Feature]] = {}
    for feature in features(client):
        for scope in getattr(feature, kind):
            scopes.setdefault(scope, []).append(feature)
    return scopes


def prove(ghl: GhlClient, client: Client, scope: str) -> str:
    """One read-only request that needs ``scope``; what it saw. Raises ``DeliveryError``."""
    return _READS[scope](ghl, client)


def _contacts(ghl: GhlClient, client: Client) -> str:
    # The pipeline's own lookup, by an address no contact has: token, scope and location at once.
    ghl.request("GET", "/contacts/search/duplicate",
                params={"locationId": ghl.location_id, "email": CHECK_EMAIL})
    return f"location {ghl.location_id}"


def _opportunities(ghl: GhlClient, client: Client) -> str:
    ghl.request("GET", "/opportunities/search", params={"location_id": ghl.location_id,
                                                        "limit": 1})
    return ""


def _conversations(ghl: GhlClient, client: Client) -> str:
    ghl.request("GET", "/conversations/search", version=LATER_VERSION,
                params={"locationId": ghl.location_id, "limit": 1})
    return ""


def _calendar(ghl: GhlClient, client: Client) -> str:
    calendar = ghl.request("GET", "/calendars/{}", client.ghl_calendar_id,
                           version=LATER_VERSION).get("calendar") or {}
    name = calendar.get("name")
    return f"calendar {client.ghl_calendar_id}" + (f" ({name[:60]})" if isinstance(name, str)
                                                    and name else "")


def _custom_fields(ghl: GhlClient, client: Client) -> str:
    return f"{len(ghl.custom_field_ids())} contact custom field(s)"


_READS: dict[str, Callable[[GhlClient, Client], str]] = {
    "contacts.readonly": _contacts,
    "opportunities.readonly": _opportunities,
    "conversations.readonly": _conversations,
    "calendars.readonly": _calendar,
    "locations/customFields.readonly": _custom_fields,
}
