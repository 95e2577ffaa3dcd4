"""``CallReport``: the domain value of an ended call, read from its end-of-call-report.

The embedded ``call`` may be a stale snapshot (in the 2024 format, taken while it was still
"ringing"): the message's own end-state fields win, and the snapshot's cost counts only once
the snapshot has ended.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from math import isfinite
from typing import Any

from .ids import is_url_id
from .vapi.schemas import parse_time

# Outcome buckets for endedReason (604 values and counting: group, don't enumerate).
_NO_ANSWER = ("customer-did-not-answer", "customer-busy", "no-answer", "operator-busy",
              "misdialed", "unallocated-number")
_COMPLETED = ("customer-ended-call", "assistant-ended-call", "assistant-said-end-call-phrase",
              "exceeded-max-duration", "silence-timed-out")
_FAILED = ("error", "fault", "failed", "assistant-request-", "assistant-not-", "worker-shutdown",
           "closed-websocket", "vonage-", "call.ringing.")


def outcome(ended_reason: str | None) -> str:
    """completed / no-answer / voicemail / transferred / failed / other."""
    reason = (ended_reason or "").lower()
    if not reason:
        return "other"
    if "voicemail" in reason:
        return "voicemail"
    if any(marker in reason for marker in _NO_ANSWER):
        return "no-answer"
    if any(marker in reason for marker in _FAILED):
        return "failed"
    if "forwarded" in reason or "transfer" in reason:
        return "transferred"
    if reason.startswith(_COMPLETED):
        return "completed"
    return "other"


CONTACT_KEYS = ("ghlContactId", "contactId")


@dataclass(frozen=True)
class CallReport:
    """What an end-of-call-report tells us, with end-state data preferred over the call snapshot."""

    call_id: str
    ended_reason: str | None = None
    outcome: str = "other"
    customer_number: str | None = None
    customer_name: str | None = None
    started_at: datetime | None = None  # else when the call was created (2024 format)
    ended_at: datetime | None = None  # else when the report was sent
    duration_seconds: float | None = None  # else the conversation's length
    cost: float | None = None  # None: unknown (never the stale snapshot's 0)
    summary: str | None = None
    structured_data: dict[str, Any] = field(default_factory=dict)
    success_evaluation: str | None = None
    transcript: str | None = None
    recording_url: str | None = None
    contact_id: str | None = None
    # The call named a contact id that fails ``ids.check_url_id``: no CRM request is made
    # for it, and no other contact is looked for (contact_id stays None).
    contact_id_invalid: bool = False
    assistant_id: str | None = None
    phone_number_id: str | None = None
    lead_name: str | None = None
    lead_email: str | None = None
    ghl_contact: dict[str, Any] = field(default_factory=dict)  # call.metadata.ghl.contact
    ghl_tags: tuple[str, ...] = ()  # call.metadata.ghl.tags

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> CallReport:
        """Build from a message validated by ``EndOfCallReportSchema``."""
        call = message.get("call") or {}
        analysis = message.get("analysis") or {}
        artifact = message.get("artifact") or {}
        # The message-level customer is newer; the call snapshot's fills what it lacks.
        customer = {**(call.get("customer") or {}),
                    **{k: v for k, v in (message.get("customer") or {}).items() if v is not None}}
        phone_number = message.get("phoneNumber") or {}
        ghl = _ghl(message)
        started = parse_time(message.get("startedAt") or call.get("startedAt"))
        ended = parse_time(message.get("endedAt") or call.get("endedAt"))
        # Exact figures first; the conversation's length only when there are none.
        seconds = _first(_duration(started, ended, message.get("durationSeconds")),
                         conversation_seconds(message))
        ended_reason = message.get("endedReason") or call.get("endedReason")
        contact_id = find_contact_id(message)
        return cls(
            call_id=call["id"],
            ended_reason=ended_reason,
            outcome=outcome(ended_reason),
            customer_number=customer.get("number"),
            customer_name=customer.get("name"),
            # The 2024 format has no startedAt/endedAt: when the call was created, and when
            # the report was sent (just after the end), are the closest it says.
            started_at=started or parse_time(call.get("createdAt")),
            ended_at=ended or _moment(message.get("timestamp")),
            duration_seconds=seconds,
            cost=_first(message.get("cost"), call.get("cost") if _has_ended(call) else None),
            summary=analysis.get("summary") or message.get("summary"),
            structured_data=analysis.get("structuredData") or {},
            success_evaluation=analysis.get("successEvaluation"),
            transcript=artifact.get("transcript") or message.get("transcript"),
            recording_url=_recording_url(artifact, message),
            contact_id=contact_id if is_url_id(contact_id) else None,
            contact_id_invalid=contact_id is not None and not is_url_id(contact_id),
            assistant_id=call.get("assistantId") or (message.get("assistant") or {}).get("id"),
            phone_number_id=call.get("phoneNumberId") or phone_number.get("id"),
            lead_name=_lead(message, "name", customer),
            lead_email=_lead(message, "email", customer),
            ghl_contact=ghl["contact"] if isinstance(ghl.get("contact"), dict) else {},
            ghl_tags=tuple(tag for tag in _list(ghl.get("tags")) if isinstance(tag, str) and tag),
        )

    def to_metadata(self) -> dict[str, Any]:
        """What the store keeps of the call (the transcript stays out: it can be large)."""
        data = self.to_dict()
        data.pop("transcript")
        if not data["contact_id_invalid"]:  # said only when it is so
            data.pop("contact_id_invalid")
        return data

    def to_dict(self) -> dict[str, Any]:
        """All of it as JSON-ready values (what the outbox keeps to deliver it later)."""
        # Shallow: the nested dicts are only ever serialised, never changed.
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("started_at", "ended_at"):
            data[name] = data[name].isoformat() if data[name] else None
        data["ghl_tags"] = list(self.ghl_tags)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallReport:
        """The inverse of ``to_dict``."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        for name in ("started_at", "ended_at"):
            values[name] = datetime.fromisoformat(values[name]) if values.get(name) else None
        values["ghl_tags"] = tuple(values.get("ghl_tags") or ())
        if values.get("contact_id") is not None and not is_url_id(values["contact_id"]):
            values |= {"contact_id": None, "contact_id_invalid": True}  # kept before the rule
        return cls(**values)


def _metadata_places(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Where a call's creator may have put our data (reference §4.6), best first."""
    call = message.get("call") or {}
    overrides = call.get("assistantOverrides") or {}
    # A tool-calls message's schema does not check ``artifact``: read only if an object.
    artifact = message.get("artifact") if isinstance(message.get("artifact"), dict) else {}
    places = [
        overrides.get("variableValues"), overrides.get("metadata"), call.get("metadata"),
        (message.get("assistant") or {}).get("metadata"), artifact.get("variableValues"),
    ]
    return [place for place in places if isinstance(place, dict)]


def _ghl(message: dict[str, Any]) -> dict[str, Any]:
    """The original service's ``metadata.ghl`` object: contactId, contact, tags."""
    return next((place["ghl"] for place in _metadata_places(message)
                 if isinstance(place.get("ghl"), dict)), {})


def _lead(message: dict[str, Any], key: str, customer: dict[str, Any]) -> str | None:
    """The lead's name or email, first match in the original service's order (seed §8)."""
    call = message.get("call") or {}
    overrides = call.get("assistantOverrides") or {}
    contact = _ghl(message).get("contact") or {}
    contact = contact if isinstance(contact, dict) else {}
    candidates = [(call.get("variables") or {}), (call.get("variableValues") or {}),
                  (overrides.get("variableValues") or {}), contact, (call.get("metadata") or {})]
    for place in candidates:
        value = place.get(key) if isinstance(place, dict) else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    if key == "name":
        full = " ".join(str(contact.get(k) or "") for k in ("firstName", "lastName")).strip()
        if full:
            return full
    value = customer.get(key)
    return value if isinstance(value, str) and value else None


def find_contact_id(message: dict[str, Any]) -> str | None:
    """The CRM contact id, from wherever the call's creator put it (reference §4.6).

    The first one found, as given: the caller checks it (``ids.is_url_id``).
    """
    call = message.get("call") or {}
    for place in _metadata_places(message):
        for candidate in (place, place.get("ghl")):
            if not isinstance(candidate, dict):
                continue
            for key in CONTACT_KEYS:
                if isinstance(candidate.get(key), str) and candidate[key]:
                    return candidate[key]
    for customer in (message.get("customer"), call.get("customer")):
        if customer and customer.get("externalId"):
            return customer["externalId"]
    return None


def conversation_seconds(message: dict[str, Any]) -> float | None:
    """How long the conversation lasted, from its messages (``artifact.messages``, else the
    legacy top-level ``messages``): where the last one ends, counted from the call's start.

    Every item has ``secondsFromStart`` (from the call's start); a spoken one also has ``time``
    and ``endTime`` (epoch ms), so it ends at ``secondsFromStart + (endTime - time) / 1000``.
    The items' ``duration`` is not used: real payloads give it in seconds and in milliseconds.
    """
    artifact = message.get("artifact") or {}
    items = _list(artifact.get("messages")) or _list(message.get("messages"))
    ends = []
    for item in items:
        if not isinstance(item, dict) or not _amount(item.get("secondsFromStart")):
            continue
        end = item["secondsFromStart"]
        start_ms, end_ms = item.get("time"), item.get("endTime")
        if _amount(start_ms) and _amount(end_ms) and end_ms >= start_ms:
            end += (end_ms - start_ms) / 1000
        ends.append(end)
    return round(max(ends), 3) if ends else None


def _amount(value: Any) -> bool:
    """A finite, non-negative JSON number (not a bool)."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and isfinite(value) and value >= 0)


def _has_ended(call: dict[str, Any]) -> bool:
    """Whether the embedded call is a snapshot taken after the end (its cost is final)."""
    return call.get("status") == "ended" or bool(call.get("endedAt"))


def _moment(value: Any) -> datetime | None:
    """The validated ``timestamp`` is already a datetime; anything else is parsed."""
    return value if isinstance(value, datetime) else parse_time(value)


def _duration(started, ended, legacy_seconds) -> float | None:
    if started and ended and ended >= started:
        return round((ended - started).total_seconds(), 3)
    return legacy_seconds


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _first(*values):
    return next((value for value in values if value is not None), None)


def _recording_url(artifact: dict[str, Any], message: dict[str, Any]) -> str | None:
    recording = artifact.get("recording") or {}
    mono = recording.get("mono") if isinstance(recording.get("mono"), dict) else {}
    # Mono first, wherever it is (one mixed track: what the Slack upload plays), then stereo.
    candidates = [artifact.get("recordingUrl"), mono.get("combinedUrl"),
                  message.get("recordingUrl"), recording.get("stereoUrl"),
                  artifact.get("stereoRecordingUrl"), message.get("stereoRecordingUrl")]
    return next((url for url in candidates if isinstance(url, str) and url), None)
