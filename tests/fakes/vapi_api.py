"""A Vapi API fake: calls (GET /call/{id}, GET /call, POST /call), and for vapi-setup
credentials (GET, POST /credential), tools (GET, POST /tool, PATCH /tool/{id}) and assistants
(GET, PATCH /assistant/{id}). Every written body is checked against the SDK's models
(``vapi_models``): a bad one is answered 400, as Vapi would, and kept in ``invalid``."""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable
from typing import Any

from werkzeug import Request, Response

from .http import Fake, json_response

ORG_ID = "5f0a9f3e-2b7c-4d1e-9a6b-3c8d7e2f1a40"
STAMP = "2026-11-20T09:15:42.318Z"


class FakeVapi(Fake):
    def __init__(self, api_key: str = "vapi-test-key"):
        super().__init__()
        self.api_key = api_key
        self.calls: dict[str, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []  # bodies of POST /call
        self.route(re.compile(r"/call/[^/]+"), "GET", self._get_call)
        self.route("/call", "POST", self._create_call)
        self.route("/call", "GET", self._list_calls)
        self.credentials: list[dict[str, Any]] = []  # as GET /credential shows them (no token)
        self.tokens: dict[str, str] = {}  # credential id -> the token it was created with
        self.tools: dict[str, dict[str, Any]] = {}
        self.assistants: dict[str, dict[str, Any]] = {}
        self.writes: list[tuple[str, str, dict[str, Any]]] = []  # (method, path, body)
        self.invalid: list[str] = []  # what broke the SDK models
        self.broken: dict[str, int] = {}  # "POST /credential" -> the status its writes get
        self.route("/credential", "GET", self._authorized(lambda r: self.credentials))
        self.route("/credential", "POST", self._authorized(self._create_credential))
        self.route("/tool", "GET", self._authorized(lambda r: list(self.tools.values())))
        self.route("/tool", "POST", self._authorized(self._create_tool))
        self.route(re.compile(r"/tool/[^/]+"), "PATCH", self._authorized(self._update_tool))
        self.route(re.compile(r"/assistant/[^/]+"), "GET", self._authorized(
            lambda r: self.assistants.get(r.path.split("/")[2])))
        self.route(re.compile(r"/assistant/[^/]+"), "PATCH",
                   self._authorized(self._update_assistant))

    # vapi-setup's objects
    def add_tool(self, name: str, **fields: Any) -> str:
        tool_id = str(uuid.uuid4())
        self.tools[tool_id] = {"id": tool_id, "orgId": ORG_ID, "createdAt": STAMP,
                               "updatedAt": STAMP, "type": "function",
                               "function": {"name": name}, **fields}
        return tool_id

    def add_assistant(self, name: str, tool_ids: list[str], **fields: Any) -> str:
        """An assistant with a custom model whose settings a PATCH must keep."""
        assistant_id = str(uuid.uuid4())
        self.assistants[assistant_id] = {
            "id": assistant_id, "orgId": ORG_ID, "name": name, "createdAt": STAMP,
            "updatedAt": STAMP, "firstMessage": "Thanks for calling, how can I help?",
            "voice": {"provider": "11labs", "voiceId": "burt"},
            "model": {"provider": "custom-llm", "url": "https://llm.example.com/v1",
                      "model": "dental-receptionist-v3", "temperature": 0.3, "maxTokens": 400,
                      "metadataSendMode": "off",
                      "messages": [{"role": "system", "content": f"You are {name}."}],
                      "toolIds": list(tool_ids)},
            **fields}
        return assistant_id

    def writes_to(self, kind: str) -> list[tuple[str, str, dict[str, Any]]]:
        return [write for write in self.writes if write[1].split("/")[1] == kind]

    def _authorized(self, handler: Callable[[Request], Any]) -> Callable[[Request], Response]:
        def handle(request: Request) -> Response:
            if request.headers.get("Authorization") != f"Bearer {self.api_key}":
                return json_response({"message": "Invalid Key"}, 401)
            if request.method != "GET":
                self.writes.append((request.method, request.path, request.get_json()))
                status = self.broken.get(f"{request.method} {request.path}")
                if status:
                    return json_response({"message": "scripted failure", "statusCode": status},
                                         status)
            answer = handler(request)
            if isinstance(answer, Response):
                return answer
            if answer is None:
                return json_response({"message": "Not Found", "statusCode": 404}, 404)
            return json_response(copy.deepcopy(answer), 201 if request.method == "POST" else 200)
        return handle

    def _refused(self, check: str, body: dict[str, Any]) -> Response | None:
        from . import vapi_models  # the SDK takes seconds to import: only where it is used

        problems = getattr(vapi_models, check)(body)
        if not problems:
            return None
        self.invalid += problems
        return json_response({"message": problems, "error": "Bad Request", "statusCode": 400},
                             400)

    def _create_credential(self, request: Request) -> Any:
        body = request.get_json()
        refused = self._refused("credential_problems", body)
        if refused:
            return refused
        plan = dict(body["authenticationPlan"])
        credential = {"id": str(uuid.uuid4()), "orgId": ORG_ID, "createdAt": STAMP,
                      "updatedAt": STAMP, **body}
        self.tokens[credential["id"]] = plan.pop("token")  # Vapi never shows it again
        self.credentials.append({**credential, "authenticationPlan": plan})
        return self.credentials[-1]

    def _create_tool(self, request: Request) -> Any:
        body = request.get_json()
        return self._refused("create_tool_problems", body) or self.tools.setdefault(
            (tool_id := str(uuid.uuid4())),
            {"id": tool_id, "orgId": ORG_ID, "createdAt": STAMP, "updatedAt": STAMP, **body})

    def _update_tool(self, request: Request) -> Any:
        body = request.get_json()
        tool = self.tools.get(request.path.split("/")[2])
        if tool is None:
            return None
        return self._refused("update_tool_problems", body) or tool.update(body) or tool

    def _update_assistant(self, request: Request) -> Any:
        body = request.get_json()
        assistant = self.assistants.get(request.path.split("/")[2])
        if assistant is None:
            return None
        return (self._refused("assistant_problems", body)
                or assistant.update(body) or assistant)

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
