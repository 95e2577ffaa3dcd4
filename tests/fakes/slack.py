"""A Slack fake: chat.postMessage and auth.test (Web API), and an incoming webhook."""

from __future__ import annotations

from typing import Any

from werkzeug import Request, Response

from tests.contract.slack import CONTRACT

from .http import Fake, json_response

WEBHOOK_PATH = "/services/T000/B000/XXXX"


class FakeSlack(Fake):
    contract = CONTRACT  # every payload parsed with slack-sdk's blocks, checked against limits

    def __init__(self):
        super().__init__()
        self.messages: list[dict[str, Any]] = []
        self.route("/api/chat.postMessage", "POST", self._post)
        self.route("/api/auth.test", "POST", self._auth_test)
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
        self.messages.append({**body, "token": request.headers["Authorization"][7:]})
        return json_response({"ok": True, "channel": body["channel"], "ts": "1.0"})

    def _auth_test(self, request: Request) -> Response:
        if not request.headers.get("Authorization", "").startswith("Bearer xoxb-"):
            return json_response({"ok": False, "error": "invalid_auth"})
        return json_response({"ok": True, "team": "Agency", "user": "vapi-bridge",
                              "url": "https://agency.slack.com/"})

    def _webhook(self, request: Request) -> Response:
        self.messages.append({**request.get_json(), "token": None})
        return Response("ok", content_type="text/plain")
