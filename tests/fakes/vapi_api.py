"""A Vapi API fake: GET /call/{id} and GET /call (list) from a dict of calls, POST /call."""

from __future__ import annotations

import re
from typing import Any

from werkzeug import Request, Response

from .http import Fake, json_response


class FakeVapi(Fake):
    def __init__(self, api_key: str = "vapi-test-key"):
        super().__init__()
        self.api_key = api_key
        self.calls: dict[str, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []  # bodies of POST /call
        self.route(re.compile(r"/call/[^/]+"), "GET", self._get_call)
        self.route("/call", "POST", self._create_call)
        self.route("/call", "GET", self._list_calls)

    def _get_call(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return json_response({"message": "Invalid Key"}, 401)
        call = self.calls.get(request.path.split("/")[2])
        if call is None:
            return json_response({"message": "Not Found", "statusCode": 404}, 404)
        return json_response(call)

    def _list_calls(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return json_response({"message": "Invalid Key"}, 401)
        return json_response(list(self.calls.values())[:int(request.args.get("limit", 100))])

    def _create_call(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return json_response({"message": "Invalid Key"}, 401)
        body = request.get_json()
        unknown = set(body) - {"assistantId", "phoneNumberId", "customer", "assistantOverrides",
                               "name", "schedulePlan"}
        if unknown:  # Vapi rejects unknown properties (reference §4.6)
            return json_response({"message": [f"property {name} should not exist"
                                              for name in sorted(unknown)],
                                  "error": "Bad Request", "statusCode": 400}, 400)
        self.created.append(body)
        call_id = f"call-{len(self.created)}"
        self.calls[call_id] = {"id": call_id, "status": "queued", **body}
        return json_response(self.calls[call_id], 201)
