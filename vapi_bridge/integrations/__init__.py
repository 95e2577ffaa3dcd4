"""Thin clients for the outside services; base URLs from settings, retries from the libraries.

Every failure leaves as ``DeliveryError``: ``retryable`` says whether trying again later
could help (connection, timeout, 429, 5xx) or not (401, 403, 404, 422...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import requests

if TYPE_CHECKING:
    from ..clients import Client
    from ..config import Settings
    from .ghl import GhlClient
    from .slack import Slack


class DeliveryError(Exception):
    def __init__(self, service: str, message: str, *, status: int | None = None,
                 retryable: bool = True):
        super().__init__(f"{service}: {message}")
        self.service = service
        self.status = status
        self.retryable = retryable


def http_error(service: str, exc: requests.RequestException) -> DeliveryError:
    """A ``requests`` failure (after its retries) as a ``DeliveryError``; no URLs, no secrets."""
    response = getattr(exc, "response", None)
    if response is not None:
        return status_error(service, response)
    return DeliveryError(service, type(exc).__name__, retryable=True)


def status_error(service: str, response: requests.Response) -> DeliveryError:
    status = response.status_code
    return DeliveryError(service, f"HTTP {status} {_reason(response)}".strip(), status=status,
                         retryable=status == 429 or status >= 500)


def _reason(response: requests.Response) -> str:
    try:
        message = response.json().get("message")
    except (ValueError, AttributeError):
        message = None
    if isinstance(message, list):
        message = "; ".join(map(str, message))
    return str(message or response.reason or "")[:200]


class Integrations:
    """The outside clients of one app, built once per client and reused (connection pools)."""

    def __init__(self, settings: Settings):
        from .ghl import GhlClient  # below DeliveryError, which they import
        from .slack import Slack
        from .vapi_api import VapiApi

        timeout = settings.http_timeout
        self._ghl = {c.name: GhlClient(settings.ghl_api_base_url, c.ghl_api_key,
                                       c.ghl_location_id, timeout=timeout)
                     for c in settings.clients if c.has_ghl}
        self._slack = {c.name: Slack(c, base_url=settings.slack_api_base_url, timeout=timeout)
                       for c in settings.clients if c.has_slack}
        self.vapi = (VapiApi(settings.vapi_api_base_url, settings.vapi_api_key, timeout=timeout)
                     if settings.vapi_api_key else None)

    @property
    def any(self) -> bool:
        """Whether any client has somewhere to deliver a call to."""
        return bool(self._ghl or self._slack)

    def ghl(self, client: Client) -> GhlClient | None:
        return self._ghl.get(client.name)

    def slack(self, client: Client) -> Slack | None:
        return self._slack.get(client.name)
