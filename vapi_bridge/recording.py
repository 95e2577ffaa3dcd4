"""The call's recording as a file in Slack, in the thread of the call's message.

The pipeline's ``recording`` step (after ``slack`` succeeded, for a client with
``slack_upload_recording`` and a bot token) calls ``upload``. The recording URL comes from the
webhook body, so it is hostile until checked: ``http(s)`` only, no user name or password in it,
no host that resolves to a link-local (cloud metadata), multicast, unspecified or reserved
address (each redirect checked again), nothing of ours sent to it (no token, and
``trust_env`` off so no ``~/.netrc`` credentials), at most ``RECORDING_MAX_BYTES`` read (counted
as they arrive, after any decompression), streamed to a temporary file, and only an ``audio/*``
answer is uploaded. A recording that can never be uploaded is skipped with the reason: the
link in the message stays.
"""

from __future__ import annotations

import ipaddress
import logging
import mimetypes
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from . import render
from .clients import Client
from .context import Context
from .integrations import DeliveryError, http_error
from .report import CallReport

log = logging.getLogger(__name__)
MAX_REDIRECTS = 3
CHUNK_BYTES = 64 * 1024
# A server trickling bytes within the read timeout cannot hold the step (and its claim's
# 5-minute lease) for ever.
DOWNLOAD_SECONDS = 120
EXTENSIONS = {"audio/wav": ".wav", "audio/wave": ".wav", "audio/webm": ".webm"}


class Unusable(Exception):
    """This recording can never be uploaded; the message says why (never the URL)."""


def after(slack: Callable[[], Any], upload_step: Callable[[], Any],
          waiting: Callable[[], Any]) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """The pipeline's (slack, recording) steps: the recording runs once the Slack message is
    posted, in its own thread (so the pipeline deadline covers it); if the Slack step is not
    ok, the recording is ``waiting()`` (pending: parked, to wait for it in the outbox)."""
    outcome: list[Any] = []
    finished = threading.Event()

    def run_slack() -> Any:
        try:
            outcome.append(slack())
            return outcome[0]
        finally:
            finished.set()

    def run_recording() -> Any:
        finished.wait()
        return upload_step() if outcome and outcome[0].status == "ok" else waiting()

    return run_slack, run_recording


def thread(ts: str | None) -> dict[str, str] | None:
    """What the Slack step keeps of its message for the upload: the thread to put it in."""
    return {"thread_ts": ts} if ts else None


def upload(report: CallReport, client: Client, ctx: Context) -> dict[str, Any]:
    """Download the recording and upload it under the call's Slack message.

    Returns what the delivery record keeps: ``{"bytes", "file_id"}``, or ``{"skipped": why}``.
    Raises ``DeliveryError`` (retryable: a 5xx, a timeout, Slack's 429 or 5xx, the message
    not posted yet).
    """
    slack = ctx.integrations.slack(client)
    if not (client.uploads_recording and slack):
        return {"skipped": "slack_upload_recording is off, or no bot token"}
    if not report.recording_url:
        return {"skipped": "no recording"}
    message = ctx.state.get_answer("slack", (report.call_id,)) or {}
    if not message.get("thread_ts"):
        if ctx.state.is_done("slack", report.call_id):
            return {"skipped": "the Slack message's ts was not kept"}
        raise DeliveryError("recording", "the Slack message is not posted yet")
    with tempfile.TemporaryDirectory(prefix="vapi-recording-") as folder:
        try:
            path, size = download(report.recording_url, Path(folder),
                                  max_bytes=ctx.settings.recording_max_bytes,
                                  timeout=ctx.settings.http_timeout)
        except Unusable as exc:
            log.warning("[RECORDING] Not uploaded callId=%s: %s", report.call_id, exc)
            return {"skipped": str(exc)}
        file = slack.upload(path, filename=f"call-{report.call_id}{path.suffix}",
                            title=title(report, client), thread_ts=message["thread_ts"])
    log.info("[RECORDING] Uploaded callId=%s bytes=%d", report.call_id, size)
    return {"bytes": size, "file_id": file.get("id")}


def title(report: CallReport, client: Client) -> str:
    """``North Dental · caller …0123 · 2026-11-25 10:00 UTC``: no full number in Slack."""
    digits = "".join(ch for ch in report.customer_number or "" if ch.isdigit())
    caller = f"caller …{digits[-4:]}" if digits else "caller unknown"
    return f"{client.name} · {caller} · {render.when(report)}"


def download(url: str, folder: Path, *, max_bytes: int, timeout: float) -> tuple[Path, int]:
    """Stream ``url`` into a file in ``folder``: (path, bytes). Raises ``Unusable`` or
    ``DeliveryError``."""
    session = requests.Session()
    session.trust_env = False  # no credentials from ~/.netrc for a host the payload names
    give_up = time.monotonic() + DOWNLOAD_SECONDS
    try:
        with session, _get(session, url, timeout) as response:
            if response.status_code != 200:  # the body (any size) is never read
                status = response.status_code
                raise DeliveryError("recording", f"download HTTP {status}", status=status,
                                    retryable=status in (408, 429) or status >= 500)
            kind = response.headers.get("Content-Type", "").partition(";")[0].strip().lower()
            if not kind.startswith("audio/"):
                raise Unusable(f"not audio (Content-Type {kind or 'missing'})")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise Unusable(f"{declared} bytes, over RECORDING_MAX_BYTES ({max_bytes})")
            path = folder / ("recording" + (EXTENSIONS.get(kind)
                                            or mimetypes.guess_extension(kind) or ""))
            size = 0
            with path.open("wb") as file:
                for chunk in response.iter_content(CHUNK_BYTES):
                    size += len(chunk)
                    if size > max_bytes:
                        raise Unusable(f"over RECORDING_MAX_BYTES ({max_bytes})")
                    if time.monotonic() > give_up:
                        raise DeliveryError("recording", f"download slower than"
                                                         f" {DOWNLOAD_SECONDS} s")
                    file.write(chunk)
            return path, size
    except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema) as exc:  # a redirect's Location, say
        raise Unusable(f"not a valid URL ({type(exc).__name__})") from None
    except requests.RequestException as exc:  # connection, timeout, a broken stream
        raise http_error("recording", exc) from None


def _get(session: requests.Session, url: str, timeout: float) -> requests.Response:
    """GET with redirects followed by hand, so that each hop is checked like the first."""
    for _ in range(MAX_REDIRECTS + 1):
        _check(url)
        response = session.get(url, stream=True, timeout=timeout, allow_redirects=False)
        if not response.is_redirect:
            return response
        url = urljoin(url, response.headers["Location"])
        response.close()
    raise Unusable(f"more than {MAX_REDIRECTS} redirects")


def _check(url: str) -> None:
    """Refuse what is not a plain http(s) URL, and hosts at addresses nobody should fetch."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Unusable("not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Unusable("not an http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise Unusable("a URL with credentials in it")
    try:
        found = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:  # a name that does not resolve (now)
        raise DeliveryError("recording", f"host not resolved ({type(exc).__name__})") from None
    for *_, address in found:
        ip = ipaddress.ip_address(str(address[0]).partition("%")[0])
        ip = getattr(ip, "ipv4_mapped", None) or ip
        if ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
            raise Unusable("the host resolves to a link-local, multicast, unspecified or"
                           " reserved address")
