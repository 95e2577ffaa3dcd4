"""FakeGhlCrm plus the reads only ``check`` makes: a conversations search and one calendar.

Answers in the spec's shapes (``SendConversationResponseDto``,
``CalendarByIdSuccessfulResponseDTO``); ``refused_scopes`` (from FakeGhl) refuses any of them
as GoHighLevel does a token without the scope.
"""

from __future__ import annotations

import re

from werkzeug import Request, Response

from .ghl_crm import CONVERSATIONS_VERSION, FakeGhlCrm
from .http import json_response

CALENDARS_VERSION = "2021-04-15"


class FakeGhlCheck(FakeGhlCrm):
    def __init__(self):
        super().__init__()
        self.calendars: dict[str, dict[str, str]] = {}  # id -> {"id", "locationId", "name"}
        self.route("/conversations/search", "GET", self._search_conversations)
        self.route(re.compile(r"/calendars/[^/]+$"), "GET", self._calendar)

    def add_calendar(self, calendar_id: str, location_id: str, name: str = "Cleanings") -> None:
        self.calendars[calendar_id] = {"id": calendar_id, "locationId": location_id, "name": name}

    def _search_conversations(self, request: Request) -> Response:
        denied = self._checked(request, CONVERSATIONS_VERSION)
        if denied:
            return denied
        if not request.args.get("locationId"):
            return json_response({"statusCode": 422, "message": ["locationId is required"]},
                                 422)
        return json_response({"conversations": [], "total": 0})

    def _calendar(self, request: Request) -> Response:
        denied = self._checked(request, CALENDARS_VERSION)
        if denied:
            return denied
        calendar = self.calendars.get(request.path.split("/")[2])
        if calendar is None:  # the spec documents 200, 400 and 401 only
            return json_response({"statusCode": 400, "message": "Bad Request"}, 400)
        return json_response({"calendar": calendar})
