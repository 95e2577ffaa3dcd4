"""What a handler or tool gets to work with: no module-level mutable state."""

from __future__ import annotations

from dataclasses import dataclass

from .config import Settings
from .storage import StateStore


@dataclass(frozen=True)
class Context:
    state: StateStore
    settings: Settings
    request_id: str
    call_id: str | None = None
