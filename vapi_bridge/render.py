"""What an ended call looks like in GoHighLevel (a note) and in Slack (Block Kit + fallback)."""

from __future__ import annotations

import re
from typing import Any

from .clients import Client
from .ids import is_url_id, url_path
from .report import CallReport

NO_SUMMARY = "No summary available."
# A link is made only from a plain http(s) URL: a `|` would start a label of the sender's
# choosing, `<`/`>` would open or close control sequences, whitespace would split it.
LINKABLE_URL = re.compile(r"https?://[^\s|<>\x00-\x1f\x7f]+", re.IGNORECASE)
OUTCOME_LABELS = {"completed": "Completed", "no-answer": "No answer", "voicemail": "Voicemail",
                  "transferred": "Transferred", "failed": "Failed", "other": "Other"}


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"


def cost(value: float | None) -> str:
    return "unknown" if value is None else f"${value:.4f}"


def when(report: CallReport) -> str:
    moment = report.started_at or report.ended_at
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "unknown"


def outcome(report: CallReport) -> str:
    label = OUTCOME_LABELS.get(report.outcome, report.outcome)
    return f"{label} ({report.ended_reason})" if report.ended_reason else label


def note_body(report: CallReport, transcript_chars: int) -> str:
    lines = [
        f"📞 Vapi call: {outcome(report)}",
        f"Time: {when(report)}",
        f"Duration: {duration(report.duration_seconds)}",
        f"Cost: {cost(report.cost)}",
        "",
        "Summary:",
        report.summary or NO_SUMMARY,
    ]
    if report.success_evaluation is not None:
        lines += ["", f"Success evaluation: {report.success_evaluation}"]
    if report.structured_data:
        lines += ["", "Structured data:"]
        lines += [f"{key}: {value}" for key, value in report.structured_data.items()]
    lines += [""]
    if report.recording_url:
        lines += [f"Recording: {report.recording_url}"]
    lines += [f"Call ID: {report.call_id}"]
    if report.transcript and transcript_chars:
        excerpt = report.transcript[:transcript_chars]
        cut = "…" if len(report.transcript) > transcript_chars else ""
        lines += ["", "Transcript:", excerpt + cut]
    return "\n".join(lines)


def contact_url(app_base_url: str, client: Client, contact_id: str | None) -> str | None:
    if not (is_url_id(contact_id) and is_url_id(client.ghl_location_id)):
        return None
    return app_base_url.rstrip("/") + url_path("/v2/location/{}/contacts/detail/{}",
                                               client.ghl_location_id, contact_id)


def slack_message(report: CallReport, client: Client, *, contact_link: str | None,
                  mention: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """(plain-text fallback, blocks). Every value from the call is escaped and shown in
    ``verbatim`` mrkdwn (no automatic parsing of bare URLs, @channel, #names): only
    ``mention`` (the SLACK_MENTION setting) mentions, and only ``link`` makes links."""
    lead = report.lead_name or "N/A"
    fallback = (f"New call for {escape(client.name)}: {escape(outcome(report))}, {escape(lead)},"
                f" {duration(report.duration_seconds)}")
    if mention:
        fallback = f"{mention} {fallback}"
    fields = [("Client", client.name), ("Lead", lead), ("Email", report.lead_email or "N/A"),
              ("Outcome", outcome(report)), ("Date", when(report)),
              ("Duration", duration(report.duration_seconds)), ("Cost", cost(report.cost))]
    blocks: list[dict[str, Any]] = [
        {"type": "header",  # plain_text: Slack parses nothing in it
         "text": {"type": "plain_text", "text": f"📞 New call: {client.name}"[:150]}},
        {"type": "section", "fields": [
            _mrkdwn(f"*{name}:*\n{escape(value)}") for name, value in fields]},
        {"type": "section", "text": _mrkdwn(
            f"*Summary:*\n{escape(report.summary or NO_SUMMARY)}"[:3000])},
    ]
    links = []
    if report.recording_url:
        links.append(link(report.recording_url, "Call recording"))
    if contact_link:
        links.append(link(contact_link, "Contact in GoHighLevel"))
    links.append(f"Call ID: `{escape(report.call_id)}`")
    blocks.append({"type": "context", "elements": [_mrkdwn(" · ".join(links))]})
    if mention:
        blocks.insert(0, {"type": "section", "text": {"type": "mrkdwn", "text": mention}})
    return fallback, blocks


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: ``&``, ``<`` and ``>`` are its control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str, label: str) -> str:
    """``<url|label>`` for a plain http(s) URL; anything else is shown as escaped text."""
    if LINKABLE_URL.fullmatch(url):
        return f"<{escape(url)}|{label}>"
    return f"{label}: {escape(url)}"


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}
