"""What a handler or tool gets to work with: no module-level mutable state."""

from __future__ import annotations

from dataclasses import dataclass

from .clients import Client
from .config import Settings
from .integrations import Integrations
from .storage import StateStore


@dataclass(frozen=True)
class Context:
    state: StateStore
    settings: Settings
    integrations: Integrations
    request_id: str
    call_id: str | None = None
    client: Client | None = None  # resolved per call, never shared between requests
    customer_number: str | None = None  # the caller (inbound) or the called (outbound)
