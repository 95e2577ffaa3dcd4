"""Vapi's REST API: calls (read, start), and for ``vapi-setup`` credentials, tools, assistants."""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .. import metrics
from ..ids import url_path
from . import DeliveryError, http_error, status_error


class VapiApi:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 10.0, retries: int = 2):
        self.base_url = base_url.rstrip("/")
        self._timeout = (min(3.05, timeout), timeout)
        self._session = requests.Session()
        self._session.headers.update({"Authorization": f"Bearer {api_key}",
                                      "Accept": "application/json"})
        retry = Retry(total=retries, backoff_factor=0.3, status_forcelist=(429, 500, 502, 503, 504),
                      raise_on_status=False)
        self._session.mount(self.base_url, HTTPAdapter(max_retries=retry))

    def get_call(self, call_id: str) -> dict[str, Any] | None:
        """The call, or ``None`` when Vapi does not know it (``InvalidId`` for a bad id)."""
        return self._call("GET", "/call/{}", call_id, not_found_ok=True)

    def check(self) -> None:
        """The cheapest authenticated read (``GET /call?limit=1``); raises ``DeliveryError``."""
        self._call("GET", "/call", params={"limit": 1})

    def create_call(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /call``; only a connection that never reached Vapi is retried (no twin calls)."""
        call = self._call("POST", "/call", json=body)
        if not call or not call.get("id"):
            raise DeliveryError("vapi", "created a call without an id", retryable=False)
        return call

    # vapi-setup (writes are not retried: urllib3 retries no POST or PATCH)
    def list_credentials(self) -> list[dict[str, Any]]:
        return self._list("/credential")

    def create_credential(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._created("/credential", body)

    def list_tools(self) -> list[dict[str, Any]]:
        return self._list("/tool")

    def create_tool(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._created("/tool", body)

    def update_tool(self, tool_id: str, body: dict[str, Any]) -> None:
        self._call("PATCH", "/tool/{}", tool_id, json=body)

    def get_assistant(self, assistant_id: str) -> dict[str, Any] | None:
        """The assistant, or ``None`` when Vapi does not know it."""
        return self._call("GET", "/assistant/{}", assistant_id, not_found_ok=True)

    def update_assistant(self, assistant_id: str, body: dict[str, Any]) -> None:
        self._call("PATCH", "/assistant/{}", assistant_id, json=body)

    def _list(self, path: str) -> list[dict[str, Any]]:
        # Vapi's lists default to 100 items and page by createdAt: one large page is plenty.
        items = self._call("GET", path, params={"limit": 1000}, want=list)
        return [item for item in items or [] if isinstance(item, dict)]

    def _created(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        created = self._call("POST", path, json=body)
        if not created or not created.get("id"):
            raise DeliveryError("vapi", f"POST {path} answered without an id", retryable=False)
        return created

    def _call(self, method: str, path: str, *ids: str, not_found_ok: bool = False,
              want: type = dict, **kwargs: Any) -> Any:
        """``path`` is a template for ``ids.url_path``: each id checked and percent-encoded.

        The answer's JSON if it is a ``want`` (an object unless told), else ``None``.
        """
        url = self.base_url + url_path(path, *ids)
        try:
            with metrics.outside("vapi"):
                response = self._session.request(method, url, timeout=self._timeout, **kwargs)
        except requests.RequestException as exc:
            raise http_error("vapi", exc) from None
        if not_found_ok and response.status_code == 404:
            return None
        if not response.ok:
            raise status_error("vapi", response)
        try:
            answer = response.json()
        except ValueError:
            return None
        return answer if isinstance(answer, want) else None
