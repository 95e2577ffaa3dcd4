"""Slack through slack-sdk: a bot token and channel, or an incoming-webhook URL.

With a bot token a message's ``ts`` comes back, and files go in its thread (``files_upload_v2``:
files.getUploadURLExternal, the upload URL, files.completeUploadExternal).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient

from .. import metrics
from ..clients import Client
from . import DeliveryError

PERMANENT_ERRORS = {"invalid_auth", "not_authed", "account_inactive", "missing_scope",
                    "channel_not_found", "not_in_channel", "is_archived", "invalid_blocks",
                    "msg_too_long", "no_text", "token_revoked", "invalid_arguments",
                    "restricted_action"}


def _retry_handlers():
    return [ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=2),
            ServerErrorRetryHandler(max_retry_count=2)]


class Slack:
    def __init__(self, client: Client, *, base_url: str, timeout: float = 10.0):
        self._client = client
        self._base_url = base_url
        self._timeout = int(max(1, timeout))

    def post(self, text: str, blocks: list[dict[str, Any]]) -> str | None:
        """Post the message; its ``ts`` (None from an incoming webhook, which says nothing)."""
        if self._client.slack_webhook_url:
            self._post_webhook(text, blocks)
            return None
        answer = self._api(lambda web: web.chat_postMessage(
            channel=self._client.slack_channel_id, text=text, blocks=blocks, unfurl_links=False))
        return answer.get("ts")

    def upload(self, path: Path, *, filename: str, title: str, thread_ts: str) -> dict[str, Any]:
        """Upload a file to the client's channel, in the thread of the message ``thread_ts``."""
        answer = self._api(lambda web: web.files_upload_v2(
            channel=self._client.slack_channel_id, file=str(path), filename=filename,
            title=title, thread_ts=thread_ts))
        return answer.get("file") or {}

    def auth_test(self) -> dict[str, Any]:
        """auth.test's answer, plus ``scopes``: the token's scopes from Slack's
        ``x-oauth-scopes`` header, or None when Slack did not send it."""
        response = self._api(lambda web: web.auth_test())
        headers = {name.lower(): value for name, value in (response.headers or {}).items()}
        header = headers.get("x-oauth-scopes")
        scopes = [s.strip() for s in header.split(",") if s.strip()] if header is not None else None
        return {**response.data, "scopes": scopes}  # type: ignore[dict-item]

    def _api(self, call: Callable[[WebClient], SlackResponse]) -> SlackResponse:
        try:
            with metrics.outside("slack"):
                return call(self._web_client())
        except SlackApiError as exc:
            raise _api_error(exc) from None
        except (SlackClientError, OSError) as exc:
            raise DeliveryError("slack", type(exc).__name__) from None

    def _post_webhook(self, text: str, blocks: list[dict[str, Any]]) -> None:
        webhook = WebhookClient(self._client.slack_webhook_url, timeout=self._timeout,
                                retry_handlers=_retry_handlers())
        try:
            with metrics.outside("slack"):
                response = webhook.send(text=text, blocks=blocks)
        except (SlackClientError, OSError) as exc:
            raise DeliveryError("slack", type(exc).__name__) from None
        if response.status_code != 200 or response.body != "ok":  # it never raises on these
            status = response.status_code
            raise DeliveryError("slack", f"webhook HTTP {status} {response.body[:100]}",
                                status=status, retryable=status == 429 or status >= 500)

    def _web_client(self) -> WebClient:
        return WebClient(token=self._client.slack_bot_token, base_url=self._base_url,
                         timeout=self._timeout, retry_handlers=_retry_handlers())


def _api_error(exc: SlackApiError) -> DeliveryError:
    error = str(exc.response.get("error") or "")
    status = exc.response.status_code
    client_fault = 400 <= status < 500 and status != 429
    retryable = error not in PERMANENT_ERRORS and not client_fault
    return DeliveryError("slack", error or f"HTTP {status}", status=status, retryable=retryable)
