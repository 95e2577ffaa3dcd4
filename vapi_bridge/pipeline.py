"""The call-ended pipeline: contact -> note | tags | slack (built in a later issue)."""

from __future__ import annotations

from .context import Context
from .vapi.messages import CallReport


def run(report: CallReport, ctx: Context) -> None:
    """Hand-off point for the GoHighLevel/Slack delivery; nothing to deliver yet."""
