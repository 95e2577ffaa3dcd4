"""Ids that become part of an outside URL: one rule, and the one way to build such a path.

A contact, call, calendar, opportunity, pipeline or stage id comes from a payload, a tool
argument or a stored record, and ends up in a GoHighLevel or Vapi URL sent with the
client's key. ``..``, ``/``, ``?``, ``#`` or ``%2e`` in it would reach another path or
change the query, so every such id must pass ``check_url_id``, and ``url_path`` (what the
HTTP clients build every URL with) checks and percent-encodes each segment as well.
Nothing here imports from the package: anything may import it.
"""

from __future__ import annotations

import re
from urllib.parse import quote

_URL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
RULE = ("1-128 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit,"
        " without '..'")
PLACEHOLDER = "{}"


class InvalidId(ValueError):
    """An id that must not go into a URL. The message never repeats the value."""


def is_url_id(value: object) -> bool:
    return isinstance(value, str) and bool(_URL_ID.fullmatch(value)) and ".." not in value


def check_url_id(value: object, what: str = "id") -> str:
    """``value`` if it is safe as one segment of an outside URL, else ``InvalidId``."""
    if not is_url_id(value):
        raise InvalidId(f"{what} must be {RULE}")
    return value  # type: ignore[return-value]


def quote_segment(segment: str) -> str:
    """Percent-encode one path segment: ``/``, ``?``, ``#``, ``%`` and the rest included."""
    return quote(segment, safe="")


def url_path(template: str, *ids: str) -> str:
    """``url_path("/contacts/{}/notes", contact_id)`` -> ``/contacts/<id>/notes``.

    Each ``{}`` segment takes the next id; every segment, fixed or not, must pass the id
    rule and is percent-encoded (so even an id formatted into the template by mistake
    cannot climb with ``..`` or touch the query).
    A trailing ``/`` is kept (GoHighLevel has ``POST /opportunities/``).
    """
    if not template.startswith("/"):
        raise ValueError(f"a URL path starts with '/': {template!r}")
    segments = template[1:].split("/")
    if segments.count(PLACEHOLDER) != len(ids):
        raise TypeError(f"{template!r} takes {segments.count(PLACEHOLDER)} ids, got {len(ids)}")
    given = iter(ids)
    built = []
    for index, segment in enumerate(segments):
        if segment == PLACEHOLDER:
            segment = check_url_id(next(given))
        elif not (segment == "" and index == len(segments) - 1 and index > 0):
            segment = check_url_id(segment, "a URL path segment")
        built.append(quote_segment(segment))
    return "/" + "/".join(built)
