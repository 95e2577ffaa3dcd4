"""GoHighLevel API v2, the calls the bridge makes, over one ``requests.Session`` per client."""

from __future__ import annotations

import logging
import threading
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from .. import metrics
from ..ids import url_path
from . import DeliveryError, http_error, status_error

log = logging.getLogger(__name__)
API_VERSION = "2021-07-28"  # contacts, notes, tags, opportunities, custom fields (reference A1)
LATER_VERSION = "2021-04-15"  # the only Version calendars and conversations accept (spec)


class GhlRetry(Retry):
    """urllib3 retries, reading GoHighLevel's rate-limit headers (it sends no Retry-After)."""

    MAX_WAIT = 5.0

    def get_retry_after(self, response):
        interval = response.headers.get("X-RateLimit-Interval-Milliseconds", "")
        if response.status == 429 and interval.isdigit():
            return min(int(interval) / 1000, self.MAX_WAIT)
        return super().get_retry_after(response)

    def increment(self, method=None, url=None, response=None, error=None, _pool=None,
                  _stacktrace=None):
        if response is not None and response.status == 429 \
                and response.headers.get("X-RateLimit-Daily-Remaining") == "0":
            # The day's budget is spent: no wait helps. urllib3 hands back the 429.
            raise MaxRetryError(_pool, url, ResponseError("GoHighLevel daily limit reached"))
        return super().increment(method, url, response, error, _pool, _stacktrace)


class GhlClient:
    def __init__(self, base_url: str, token: str, location_id: str, *, timeout: float = 10.0,
                 retries: int = 3, backoff: float = 0.5):
        self.base_url = base_url.rstrip("/")
        self.location_id = location_id
        self._timeout = (min(3.05, timeout), timeout)
        self._session = requests.Session()
        self._session.headers.update({"Authorization": f"Bearer {token}", "Version": API_VERSION,
                                      "Accept": "application/json"})
        # POSTs are retried on 429/5xx too: a note lost is worse than a rare duplicate, and
        # our claims stop the pipeline itself from posting twice.
        retry = GhlRetry(total=retries, connect=retries, read=retries, status=retries,
                         backoff_factor=backoff, status_forcelist=(429, 500, 502, 503, 504),
                         allowed_methods=None, raise_on_status=False,
                         respect_retry_after_header=True)
        self._session.mount(self.base_url, HTTPAdapter(max_retries=retry))
        # Read once per process (a lock each: the two steps reading them run in parallel).
        self._fields: dict[str, dict[str, Any]] | None = None
        self._fields_lock = threading.Lock()
        self._pipelines: dict[str, list[str]] | None = None
        self._pipelines_lock = threading.Lock()

    def find_contact_by_phone(self, phone: str) -> dict[str, Any] | None:
        body = self.request("GET", "/contacts/search/duplicate",
                             params={"locationId": self.location_id, "number": phone},
                             not_found_ok=True)
        contact = (body or {}).get("contact")
        return contact if isinstance(contact, dict) and contact.get("id") else None

    def upsert_contact(self, fields: dict[str, Any]) -> dict[str, Any]:
        # No "tags" here: upsert overwrites every tag the contact has (reference A3).
        data = {k: v for k, v in fields.items() if v not in (None, "") and k != "tags"}
        if "customFields" in data:
            custom = self._spec_custom_fields(data.pop("customFields"))
            if custom:
                data["customFields"] = custom
        body = self.request("POST", "/contacts/upsert", json={**data,
                                                               "locationId": self.location_id})
        contact = body.get("contact") or {}
        if not contact.get("id"):
            raise DeliveryError("ghl", "upsert answered without a contact id", retryable=False)
        return contact

    def custom_field_ids(self) -> dict[str, str]:
        """The location's contact custom fields, ``{fieldKey: id}`` (fieldKey as GoHighLevel
        writes it: ``contact.lead_source``)."""
        return {key: field["id"] for key, field in self.custom_fields().items()}

    def custom_fields(self) -> dict[str, dict[str, Any]]:
        """The location's contact custom fields as GoHighLevel answers them (``dataType``,
        ``picklistOptions``...), by fieldKey. Read once per process (scope
        ``locations/customFields.readonly``); a failure raises ``DeliveryError`` and is not kept.
        """
        with self._fields_lock:  # one read, however many calls want it at once
            if self._fields is None:
                body = self.request("GET", "/locations/{}/customFields", self.location_id,
                                    params={"model": "contact"})
                self._fields = {
                    f["fieldKey"]: f for f in body.get("customFields") or []
                    if isinstance(f, dict) and _text(f.get("fieldKey")) and _text(f.get("id"))}
            return self._fields

    def pipeline_stages(self) -> dict[str, list[str]]:
        """``{pipeline id: its stage ids in order}`` (``position``, else as listed), read once
        per process (scope ``opportunities.readonly``); a failure is not kept."""
        with self._pipelines_lock:
            if self._pipelines is None:
                body = self.request("GET", "/opportunities/pipelines",
                                    params={"locationId": self.location_id})
                self._pipelines = {
                    p["id"]: _stage_order(p.get("stages")) for p in body.get("pipelines") or []
                    if isinstance(p, dict) and _text(p.get("id"))}
            return self._pipelines

    def update_contact(self, contact_id: str, fields: dict[str, Any]) -> None:
        """``PUT /contacts/{id}``: only the fields given change (``customFields`` as the spec's
        items, ``{"id", "field_value"}``)."""
        self.request("PUT", "/contacts/{}", contact_id, json=fields)

    def _spec_custom_fields(self, items: object) -> list[dict[str, Any]]:
        """``customFields`` as the upsert body takes them: ``{"id", "field_value"}``, ``id``
        required. The read shape ``{"id", "value"}`` is converted, a ``key`` is looked up;
        anything else is dropped with a log line that never shows a value."""
        if not isinstance(items, list):
            log.warning("[GHL] customFields dropped: a %s, not a list", type(items).__name__)
            return []
        ids: dict[str, str] = {}
        unreadable = ""
        if any(isinstance(i, dict) and not i.get("id") and i.get("key") for i in items):
            try:
                ids = self.custom_field_ids()
            except DeliveryError as exc:
                unreadable = f"the location's custom fields are unreadable ({exc})"
        kept = []
        for index, item in enumerate(items):
            field, why = _spec_custom_field(item, ids, unreadable)
            if field is None:
                log.warning("[GHL] customFields item #%d dropped: %s", index, why)
            else:
                kept.append(field)
        return kept

    def add_note(self, contact_id: str, body: str) -> str | None:
        answer = self.request("POST", "/contacts/{}/notes", contact_id, json={"body": body})
        return (answer.get("note") or {}).get("id")

    def add_tags(self, contact_id: str, tags: list[str]) -> None:
        self.request("POST", "/contacts/{}/tags", contact_id, json={"tags": tags})

    def request(self, method: str, path: str, *ids: str, version: str = API_VERSION,
                not_found_ok: bool = False, **kwargs: Any) -> dict[str, Any]:
        """Any GoHighLevel call (calendars and conversations want ``Version: 2021-04-15``).

        ``path`` is a template: ``request("GET", "/contacts/{}", contact_id)``. Each id is
        checked and percent-encoded (``ids.url_path``); a bad one raises ``InvalidId``
        before anything is sent.
        """
        url = self.base_url + url_path(path, *ids)
        try:
            with metrics.outside("ghl"):
                response = self._session.request(method, url, timeout=self._timeout,
                                                  headers={"Version": version}, **kwargs)
        except requests.RequestException as exc:
            raise http_error("ghl", exc) from None
        if not_found_ok and response.status_code == 404:
            return {}
        if not response.ok:
            raise status_error("ghl", response)
        try:
            body = response.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}


def _spec_custom_field(item: object, ids: dict[str, str],
                       unreadable: str) -> tuple[dict[str, Any] | None, str]:
    """(the item in the upsert's shape, or None and why)."""
    if not isinstance(item, dict):
        return None, f"a {type(item).__name__}, not an object"
    value = item["field_value"] if "field_value" in item else item.get("value")
    if not _field_value(value):
        return None, f"no field_value or value GoHighLevel takes (a {type(value).__name__})"
    field_id, key = item.get("id"), item.get("key")
    if not field_id and _text(key):
        if unreadable:
            return None, f"key {key[:60]!r} not looked up: {unreadable}"
        # fieldKey carries the "contact." prefix; the upsert's own example key has none.
        field_id = ids.get(key if key.startswith("contact.") else f"contact.{key}")
        if field_id is None:
            return None, f"no contact custom field has the key {key[:60]!r}"
    if not _text(field_id):
        return None, "neither an id nor a key"
    return {"id": field_id, "field_value": value}, ""


def _field_value(value: object) -> bool:
    """A type one of the spec's field_value schemas shows: text, a number (NumericField's
    example), a list of texts (checkbox, multi-select), an object (file)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, list):
        return all(isinstance(v, str) for v in value)
    return isinstance(value, str | int | float | dict)


def _stage_order(stages: object) -> list[str]:
    """Stage ids by ``position``, else as listed (live answers: ``{"id", "name", "position"}``
    objects; the spec's "array of arrays" carries no id, see tests/contract/exceptions.py)."""
    found = [s for s in stages if isinstance(s, dict) and _text(s.get("id"))] \
        if isinstance(stages, list) else []

    def place(pair: tuple[int, dict[str, Any]]) -> tuple[float, int]:
        index, stage = pair
        position = stage.get("position")
        usable = isinstance(position, int | float) and not isinstance(position, bool)
        return (position if usable else index), index

    return [stage["id"] for _, stage in sorted(enumerate(found), key=place)]


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())
