"""Thin clients for the outside services; base URLs from settings, retries from the libraries.

Every failure leaves as ``DeliveryError``: ``retryable`` says whether trying again later
could help (connection, timeout, 429, 5xx) or not (401, 403, 404, 422...).
"""

from __future__ import annotations

import requests


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
