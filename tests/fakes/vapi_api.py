"""A Vapi API fake: GET /call/{id} from a dict of calls."""

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
        self.route(re.compile(r"/call/[^/]+"), "GET", self._get_call)

    def _get_call(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return json_response({"message": "Invalid Key"}, 401)
        call = self.calls.get(request.path.split("/")[2])
        if call is None:
            return json_response({"message": "Not Found", "statusCode": 404}, 404)
        return json_response(call)
