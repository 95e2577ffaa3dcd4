"""The call-ended CRM steps a client's maps ask for: ``fields`` (structuredData and facts of
the call into contact custom fields) and ``stage`` (the call's result into a pipeline stage).

pipeline.py runs them like the note and the tags (one claim per call and contact, parked on a
retryable error); this module decides what to send and sends it, and ``check_maps`` proves the
maps against the account for the ``check`` command. Values never reach the logs.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from .client_maps import StageMap
from .clients import Client
from .integrations import DeliveryError
from .integrations.ghl import GhlClient
from .report import CallReport
from .tools.opportunities import put_in_stage

log = logging.getLogger(__name__)

YES, NO = ("yes", "true", "y"), ("no", "false", "n")
TEXT_TYPES = ("TEXT", "LARGE_TEXT", "PHONE", "EMAIL")
NUMBER_TYPES = ("NUMERICAL", "MONETORY")
ONE_OPTION_TYPES = ("SINGLE_OPTIONS", "RADIO")
OPTIONS_TYPES = ("CHECKBOX", "MULTIPLE_OPTIONS")
DATE_TYPES = ("DATE",)
SUPPORTED_TYPES = (*TEXT_TYPES, *NUMBER_TYPES, *ONE_OPTION_TYPES, *OPTIONS_TYPES, *DATE_TYPES)


class Unusable(ValueError):
    """A call's value the field cannot take; the message says why, never the value."""


# fields
def mapped_values(report: CallReport, client: Client) -> dict[str, Any]:
    """``{custom field key or id: value}``: each ``field_map`` path the call's structuredData
    has, each ``call_fields`` text whose placeholders all have a value. Missing: not there."""
    values = {target: found for path, target in client.field_map.items()
              if (found := lookup(report.structured_data, path)) not in (None, "", [])}
    facts = _call_facts(report)
    for target, text in client.call_fields.items():
        try:
            values[target] = text.format_map(facts)
        except KeyError:  # a placeholder the call has no value for
            continue
    return values


def write_fields(report: CallReport, client: Client, contact_id: str, ghl: GhlClient) -> None:
    """One ``PUT /contacts/{id}`` with every mapped value the field takes (none: no request)."""
    fields = ghl.custom_fields()
    items = []
    for target, value in mapped_values(report, client).items():
        field = find_field(fields, target)
        try:
            if field is None:
                raise Unusable("no such contact custom field (run check)")
            items.append({"id": field["id"], "field_value": convert(value, field)})
        except Unusable as exc:
            log.warning("[CRM_FIELDS] %s left alone callId=%s client=%s: %s", target[:60],
                        report.call_id, client.name, exc)
    if items:
        ghl.update_contact(contact_id, {"customFields": items})
    log.info("[CRM_FIELDS] callId=%s client=%s fields=%d", report.call_id, client.name,
             len(items))


def find_field(fields: dict[str, dict[str, Any]], target: str) -> dict[str, Any] | None:
    """By fieldKey (``contact.`` optional, as in the upsert's own example) or by id."""
    key = target if target.startswith("contact.") else f"contact.{target}"
    return fields.get(key) or next((f for f in fields.values() if f["id"] == target), None)


def convert(value: Any, field: dict[str, Any]) -> str | list[str]:
    """``value`` as the field's ``dataType`` takes it. Numbers go as their decimal text: the
    spec types NumericField's field_value "object", so only a string is valid per its schemas."""
    kind = field.get("dataType")
    options = [o for o in field.get("picklistOptions") or [] if isinstance(o, str)]
    if kind in TEXT_TYPES:
        return _text(value)
    if kind in NUMBER_TYPES:
        return _number(value)
    if kind in DATE_TYPES:
        return _date(value)
    if kind in ONE_OPTION_TYPES:
        return _option(value, options)
    if kind in OPTIONS_TYPES:
        return _options(value, options)
    raise Unusable(f"a {kind} field is not written by calls")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, int | float):
        return _decimal(value)
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(map(_text, value))
    if isinstance(value, str):
        return value
    raise Unusable(f"a {type(value).__name__} is not text")


def _number(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = float(value.strip().lstrip("$€£").replace(",", ""))
        except ValueError:
            raise Unusable("not a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise Unusable("not a number")
    return _decimal(value)


def _decimal(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _date(value: Any) -> str:
    """``YYYY-MM-DD``, from an ISO date or date-time."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).date().isoformat()
        except ValueError:
            try:
                return date.fromisoformat(value.strip()[:10]).isoformat()
            except ValueError:
                pass
    raise Unusable("not an ISO date")


def _option(value: Any, options: list[str]) -> str:
    """The option ``value`` names (any case); true/false as the option saying yes/no."""
    if isinstance(value, bool):
        words = YES if value else NO
        found = next((o for o in options if o.strip().lower() in words), None)
    else:
        text = _text(value).strip().lower()
        found = next((o for o in options if o.strip().lower() == text), None)
    if found is None:
        raise Unusable("not one of the field's options")
    return found


def _options(value: Any, options: list[str]) -> list[str]:
    """A checkbox or multi-select: its options named; true/false ticks or unticks a lone one."""
    if isinstance(value, bool) and len(options) == 1:
        return options if value else []
    return [_option(v, options) for v in (value if isinstance(value, list) else [value])]


# stage
def target_stage(report: CallReport, stage_map: StageMap | None) -> str | None:
    """The stage the call earns: the structuredData value at ``data_key`` beats the
    successEvaluation, which beats the outcome (the first of them ``stages`` names)."""
    if stage_map is None:
        return None
    tried = [lookup(report.structured_data, stage_map.data_key) if stage_map.data_key else None,
             report.success_evaluation, report.outcome]
    for value in tried:
        key = _key(value)
        if key in stage_map.stages:
            return stage_map.stages[key]
    return None


def move_stage(report: CallReport, client: Client, contact_id: str, ghl: GhlClient) -> None:
    """The contact's opportunity in the pipeline moved (never backwards unless the client
    allows it), or created in that stage."""
    stage_map = client.stage_map
    stage_id = target_stage(report, stage_map)
    if stage_map is None or stage_id is None:
        return
    order = None if client.stage_allow_backwards else ghl.pipeline_stages().get(
        stage_map.pipeline_id)
    if order is None and not client.stage_allow_backwards:
        log.warning("[CRM_STAGE] Pipeline %s not in the account's pipelines: stage order"
                    " unknown, moved anyway", stage_map.pipeline_id)
    who = report.lead_name or report.customer_name or "Caller"
    done = put_in_stage(ghl, contact_id, stage_map.pipeline_id, stage_id,
                        f"{who} - {client.name}", order=order)
    log.info("[CRM_STAGE] callId=%s client=%s stage=%s: %s", report.call_id, client.name,
             stage_id, {"later": "left in a later stage"}.get(done, done))


# check
def check_maps(ghl: GhlClient, client: Client) -> list[str]:
    """``check`` lines for the client's maps against the account: every mapped custom field
    exists (and is a type calls can write), the pipeline and every stage id exist."""
    name = f"ghl ({client.name})"
    lines = []
    targets = [*client.field_map.values(), *client.call_fields]
    if targets:
        try:
            fields = ghl.custom_fields()
        except DeliveryError as exc:
            lines.append(f"FAIL {name} field_map: custom fields unreadable: {exc}")
        else:
            found = {t: find_field(fields, t) for t in targets}
            missing = [t for t, f in found.items() if f is None]
            unwritable = [t for t, f in found.items() if f and f.get("dataType")
                          not in SUPPORTED_TYPES]
            if missing:
                lines.append(f"FAIL {name} field_map: no contact custom field "
                             + ", ".join(map(repr, missing)) + " -> create it in GoHighLevel"
                             " or fix field_map / call_fields")
            if unwritable:
                lines.append(f"FAIL {name} field_map: calls cannot write "
                             + ", ".join(f"{t!r} ({found[t]['dataType']})" for t in unwritable))
            if not (missing or unwritable):
                lines.append(f"OK   {name} field_map: {len(found)} custom field(s) found")
    stage_map = client.stage_map
    if stage_map is not None:
        try:
            stages = ghl.pipeline_stages().get(stage_map.pipeline_id)
        except DeliveryError as exc:
            lines.append(f"FAIL {name} stage_map: pipelines unreadable: {exc}")
            return lines
        unknown = sorted({s for s in stage_map.stages.values() if s not in (stages or [])})
        if stages is None:
            lines.append(f"FAIL {name} stage_map: no pipeline {stage_map.pipeline_id!r}")
        elif unknown:
            lines.append(f"FAIL {name} stage_map: pipeline {stage_map.pipeline_id!r} has no"
                         " stage " + ", ".join(map(repr, unknown)))
        else:
            lines.append(f"OK   {name} stage_map: pipeline {stage_map.pipeline_id!r},"
                         f" {len(set(stage_map.stages.values()))} stage(s) found")
    return lines


# shared
def lookup(data: Any, path: str) -> Any:
    """``data["a"]["b"]`` for ``"a.b"``; None where any step is missing."""
    for step in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(step)
    return data


def _key(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value).strip().lower()
    return None


def _call_facts(report: CallReport) -> dict[str, str]:
    """What ``call_fields`` placeholders stand for; one without a value is left out."""
    facts = {"call_id": report.call_id, "outcome": report.outcome,
             "ended_reason": report.ended_reason, "success_evaluation": report.success_evaluation,
             "summary": report.summary, "recording_url": report.recording_url,
             "started_at": report.started_at.isoformat() if report.started_at else None,
             "ended_at": report.ended_at.isoformat() if report.ended_at else None,
             "duration_seconds": (str(round(report.duration_seconds))
                                  if report.duration_seconds is not None else None)}
    return {name: value for name, value in facts.items() if value}
