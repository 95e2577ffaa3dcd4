"""A Slack fake: chat.postMessage, auth.test and the file upload slack-sdk's ``files_upload_v2``
makes (files.getUploadURLExternal, a POST of the bytes to the URL it gave, then
files.completeUploadExternal) (Web API), and an incoming webhook."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from werkzeug import Request, Response

from tests.contract.slack import CONTRACT

from .http import Fake, json_response

WEBHOOK_PATH = "/services/T000/B000/XXXX"
UPLOAD_PATH = "/upload/v1/"  # Slack's is on files.slack.com; any URL it answers works


class FakeSlack(Fake):
    contract = CONTRACT  # every payload parsed with slack-sdk's blocks, checked against limits

    def __init__(self):
        super().__init__()
        self.messages: list[dict[str, Any]] = []
        self.files: list[dict[str, Any]] = []  # completed uploads, with their bytes
        self.uploading: dict[str, dict[str, Any]] = {}  # file id -> filename, length, data
        # What auth.test's x-oauth-scopes header says (None: no header, as some answers).
        self.scopes: list[str] | None = ["chat:write", "files:write"]
        self._file_ids = itertools.count(1)
        self.route("/api/chat.postMessage", "POST", self._post)
        self.route("/api/auth.test", "POST", self._auth_test)
        self.route("/api/files.getUploadURLExternal", "POST", self._upload_url)
        self.route(re.compile(re.escape(UPLOAD_PATH) + r"F\d+"), "POST", self._upload)
        self.route("/api/files.completeUploadExternal", "POST", self._complete)
        self.route(WEBHOOK_PATH, "POST", self._webhook)

    @property
    def api_url(self) -> str:
        return self.server.url_for("/api/")

    @property
    def webhook_url(self) -> str:
        return self.server.url_for(WEBHOOK_PATH)

    def _post(self, request: Request) -> Response:
        if not request.headers.get("Authorization", "").startswith("Bearer xoxb-"):
            return json_response({"ok": False, "error": "invalid_auth"})
        body = request.get_json()
        if not body.get("channel"):
            return json_response({"ok": False, "error": "channel_not_found"})
        ts = f"1764064950.{len(self.messages) + 1:06d}"  # Slack's shape: seconds.micros
        self.messages.append({**body, "token": request.headers["Authorization"][7:], "ts": ts})
        return json_response({"ok": True, "channel": body["channel"], "ts": ts})

    def _auth_test(self, request: Request) -> Response:
        if not request.headers.get("Authorization", "").startswith("Bearer xoxb-"):
            return json_response({"ok": False, "error": "invalid_auth"})
        headers = {"x-oauth-scopes": ",".join(self.scopes)} if self.scopes is not None else {}
        return json_response({"ok": True, "team": "Agency", "user": "vapi-bridge",
                              "url": "https://agency.slack.com/"}, headers=headers)

    def _refused(self, request: Request) -> Response | None:
        if not request.headers.get("Authorization", "").startswith("Bearer xoxb-"):
            return json_response({"ok": False, "error": "invalid_auth"})
        if "files:write" not in (self.scopes or []):
            return json_response({"ok": False, "error": "missing_scope",
                                  "needed": "files:write"})
        return None

    def _upload_url(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused:
            return refused
        file_id = f"F{next(self._file_ids):08d}"
        self.uploading[file_id] = {"filename": request.form["filename"],
                                   "length": int(request.form["length"]), "data": None}
        return json_response({"ok": True, "file_id": file_id,
                              "upload_url": self.server.url_for(UPLOAD_PATH + file_id)})

    def _upload(self, request: Request) -> Response:
        upload = self.uploading.get(request.path.rsplit("/", 1)[1])
        data = request.get_data()
        if upload is None or len(data) != upload["length"]:
            return Response("unknown file or wrong length", status=400)
        upload["data"] = data
        return Response(f"OK - {len(data)}", content_type="text/plain")

    def _complete(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused:
            return refused
        answered = []
        for item in json.loads(request.form["files"]):
            upload = self.uploading.pop(item["id"], None)
            if upload is None or upload["data"] is None:
                return json_response({"ok": False, "error": "file_not_found"})
            self.files.append({**upload, "id": item["id"], "title": item.get("title"),
                               "channel": request.form.get("channel_id"),
                               "thread_ts": request.form.get("thread_ts"),
                               "token": request.headers["Authorization"][7:]})
            answered.append({"id": item["id"], "title": item.get("title"),
                             "name": upload["filename"], "size": len(upload["data"])})
        return json_response({"ok": True, "files": answered})

    def _webhook(self, request: Request) -> Response:
        self.messages.append({**request.get_json(), "token": None})
        return Response("ok", content_type="text/plain")
