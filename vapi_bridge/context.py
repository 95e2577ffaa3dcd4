"""What a handler or tool gets to work with: no module-level mutable state."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from flask import current_app, g, has_request_context

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
    contact_id: str | None = None  # the CRM contact the call names (its metadata), if any


def current_context() -> Context:
    """The context of the current request (or CLI command: its own request id)."""
    from .storage import get_state

    request_id = g.request_id if has_request_context() else f"cli-{uuid.uuid4().hex[:12]}"
    return Context(state=get_state(), settings=current_app.config["SETTINGS"],
                   integrations=current_app.extensions["integrations"], request_id=request_id)
