"""The call-ended CRM maps of a client entry (``field_map``, ``call_fields``, ``stage_map``): their
schemas and values, for clients.py to load and crm_steps.py to follow."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from .ids import RULE, is_url_id

# What a ``call_fields`` value may say (``{outcome}``...): CallReport fields, no template engine.
CALL_FIELD_PLACEHOLDERS = ("call_id", "outcome", "ended_reason", "success_evaluation", "summary",
                           "started_at", "ended_at", "duration_seconds", "recording_url")


@dataclass(frozen=True)
class StageMap:
    """Where a call moves the contact's opportunity: ``stages`` keys (lower case) are a value
    of structuredData at ``data_key``, a successEvaluation or an outcome, tried in that order."""

    pipeline_id: str
    stages: Mapping[str, str]
    data_key: str | None = None


def _url_id(value: str) -> bool:
    if not is_url_id(value):
        raise ValidationError(f"Not a GoHighLevel id ({RULE}).")
    return True


def placeholders(value: str) -> bool:
    """A ``call_fields`` text: only the documented placeholders, no format spec or conversion."""
    try:
        names = [(name, spec, conversion) for _, name, spec, conversion
                 in string.Formatter().parse(value) if name is not None]
    except ValueError as exc:
        raise ValidationError(f"{exc} (write {{{{ and }}}} for a literal brace).") from None
    for name, spec, conversion in names:
        if name not in CALL_FIELD_PLACEHOLDERS or spec or conversion:
            raise ValidationError(f"Unknown placeholder {{{name}}} (use one of "
                                  + ", ".join(f"{{{p}}}" for p in CALL_FIELD_PLACEHOLDERS)
                                  + ").")
    return True


def text() -> fields.String:
    """A non-empty string field (a new one each time: a field belongs to one schema)."""
    return fields.String(validate=validate.Length(min=1))


class StageMapSchema(Schema):
    class Meta:
        unknown = RAISE

    pipeline_id = fields.String(required=True, validate=_url_id)
    data_key = fields.String(validate=validate.Length(min=1))
    stages = fields.Dict(keys=text(), values=fields.String(validate=_url_id), required=True,
                         validate=validate.Length(min=1))
