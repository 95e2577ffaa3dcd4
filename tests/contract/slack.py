"""Slack's Block Kit contract for the payloads the tests post to the Slack fake.

Every ``blocks`` list is parsed with slack-sdk's block models (``Block.parse``, then ``to_dict``,
which runs their validators: e.g. header text 150, section text 3,000, context 10 elements), and
checked against Slack's published limits: at most 50 blocks a message, 3,000 characters per
section text, 150 per header, and 3,000 for the fallback ``text`` we send. A file upload's two
Web API calls are checked for the arguments Slack requires.
"""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from werkzeug import Request, Response

from . import ledger

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FALLBACK_TEXT = 3000  # ours: Slack cuts `text` at 40,000, we promise a readable fallback


def problems(payload: Any) -> list[str]:
    """What is wrong with one message payload (``text`` and ``blocks``), in words."""
    if not isinstance(payload, dict):
        return [f"not a JSON object: {type(payload).__name__}"]
    found = []
    text = payload.get("text")
    if text is not None and (not isinstance(text, str) or len(text) > MAX_FALLBACK_TEXT):
        found.append(f"fallback text: {len(str(text))} characters, more than {MAX_FALLBACK_TEXT}")
    blocks = payload.get("blocks", [])
    if not isinstance(blocks, list):
        return [*found, "blocks: not a list"]
    if len(blocks) > MAX_BLOCKS:
        found.append(f"{len(blocks)} blocks, more than {MAX_BLOCKS}")
    for index, block in enumerate(blocks):
        found += [f"block {index}: {p}" for p in _block_problems(block)]
    return found


def _block_problems(block: Any) -> list[str]:
    parsed = Block.parse(block) if isinstance(block, dict) else None
    if parsed is None or type(parsed) is Block:
        return [f"not a Block Kit block slack-sdk knows: {str(block)[:80]}"]
    try:
        parsed.to_dict()  # runs slack-sdk's validators
    except SlackObjectFormationError as exc:
        return [str(exc)]
    limit = {"section": MAX_SECTION_TEXT, "header": MAX_HEADER_TEXT}.get(block.get("type"))
    text = (block.get("text") or {}).get("text", "") if isinstance(block.get("text"), dict) else ""
    if limit and len(text) > limit:
        return [f"{block['type']} text: {len(text)} characters, more than {limit}"]
    return []


def _upload_url_problems(form: Any) -> list[str]:
    """files.getUploadURLExternal: ``filename`` and ``length`` (bytes, an integer) required."""
    found = [] if form.get("filename") else ["filename: required"]
    if not str(form.get("length", "")).isdigit() or int(form["length"]) < 1:
        found.append(f"length: a positive integer required (got {form.get('length')!r})")
    return found


def _complete_problems(form: Any) -> list[str]:
    """files.completeUploadExternal: ``files``, a JSON array of ``{"id", "title"?}``;
    ``thread_ts`` only with ``channel_id`` (a thread is in a channel)."""
    try:
        files = json.loads(form.get("files") or "null")
    except ValueError:
        files = None
    found = []
    if not (isinstance(files, list) and files
            and all(isinstance(f, dict) and f.get("id") for f in files)):
        found.append("files: a JSON array of objects with an id required")
    if form.get("thread_ts") and not form.get("channel_id"):
        found.append("thread_ts without channel_id")
    return found


UPLOAD_METHODS = {"files.getUploadURLExternal": _upload_url_problems,
                  "files.completeUploadExternal": _complete_problems}


class SlackContract:
    """Plugged into the Slack fake (tests/fakes/http.py calls these two methods)."""

    def check_request(self, request: Request) -> None:
        method = request.path.removeprefix("/api/")
        if method == "auth.test" or request.path.startswith("/upload/"):
            return  # no payload; the upload URL takes the file's bytes as they are
        if method in UPLOAD_METHODS:
            ledger.count(ledger.slack_payloads, method)
            for problem in UPLOAD_METHODS[method](request.form):
                ledger.violation(f"Slack {method}", "form", problem)
            return
        kind = "chat.postMessage" if request.path.startswith("/api/") else "incoming webhook"
        try:
            payload = json.loads(request.get_data(as_text=True) or "null")
        except ValueError:
            ledger.violation(f"Slack {kind}", "*", "the body is not JSON")
            return
        ledger.count(ledger.slack_payloads, kind)
        for problem in problems(payload):
            ledger.violation(f"Slack {kind}", "payload", problem)

    def check_response(self, request: Request, response: Response) -> None:
        """Slack's answers are the fake's own small dicts; nothing published to compare with."""


CONTRACT = SlackContract()
