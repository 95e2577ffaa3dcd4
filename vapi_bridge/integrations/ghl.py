"""GoHighLevel API v2, the calls the bridge makes, over one ``requests.Session`` per client."""

from __future__ import annotations

import logging
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from ..ids import url_path
from . import DeliveryError, http_error, status_error

log = logging.getLogger(__name__)
API_VERSION = "2021-07-28"  # contacts, notes, tags (reference A1)


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

    def find_contact_by_phone(self, phone: str) -> dict[str, Any] | None:
        body = self.request("GET", "/contacts/search/duplicate",
                             params={"locationId": self.location_id, "number": phone},
                             not_found_ok=True)
        contact = (body or {}).get("contact")
        return contact if isinstance(contact, dict) and contact.get("id") else None

    def upsert_contact(self, fields: dict[str, Any]) -> dict[str, Any]:
        # No "tags" here: upsert overwrites every tag the contact has (reference A3).
        data = {k: v for k, v in fields.items() if v not in (None, "") and k != "tags"}
        body = self.request("POST", "/contacts/upsert", json={**data,
                                                               "locationId": self.location_id})
        contact = body.get("contact") or {}
        if not contact.get("id"):
            raise DeliveryError("ghl", "upsert answered without a contact id", retryable=False)
        return contact

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
