"""FakeGhl plus calendars: free slots and appointments, ``Version: 2021-04-15`` checked."""

from __future__ import annotations

import itertools
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from .ghl import FakeGhl
from .http import QuickStopServer, json_response

CALENDAR_VERSION = "2021-04-15"
MAX_RANGE_MS = 31 * 24 * 3600 * 1000  # GoHighLevel answers at most 31 days (reference A6)
TAKEN = {"statusCode": 422, "message": ["The slot you have selected is no longer available"],
         "error": "Unprocessable Entity"}
# UpsertAppointment fields (reference A6): anything else is refused, as GoHighLevel does.
APPOINTMENT_FIELDS = {
    "calendarId", "locationId", "contactId", "startTime", "endTime", "title",
    "appointmentStatus", "assignedUserId", "address", "meetingLocationType", "meetingLocationId",
    "overrideLocationConfig", "ignoreDateRange", "ignoreFreeSlotValidation", "toNotify", "rrule",
}


class FakeGhlCalendar(FakeGhl):
    def __init__(self):
        super().__init__()
        # The free-slots answer, keyed by date as GoHighLevel does; "traceId" is added.
        self.slots: dict[str, dict[str, list[str]]] = {}
        self.taken: set[str] = set()  # startTimes answered with 422 (any ISO form, same instant)
        self.slot_queries: list[dict[str, Any]] = []  # {"calendar_id", "args", "version"}
        self.appointments: list[dict[str, Any]] = []  # the bodies booked
        self.refused: list[dict[str, Any]] = []  # the bodies answered with 4xx
        self.booking_attempts = 0
        self._booking_failures: list[int] = []
        self._appointment_ids = itertools.count(1)
        self.route(re.compile(r"/calendars/[^/]+/free-slots"), "GET", self._free_slots)
        self.route("/calendars/events/appointments", "POST", self._appointment)

    def route(self, pattern, method: str, handler) -> None:
        # Kept to serve them again from a shared server (``attach``); called before __init__ ends.
        self.__dict__.setdefault("_routes", []).append((pattern, method, handler))
        super().route(pattern, method, handler)

    def attach(self, server: HTTPServer) -> FakeGhlCalendar:
        """Answer on an already running server instead of its own (which is never started):
        a fresh fake per test without paying the 0.5 s a server takes to stop."""
        server.clear()
        self.server = server
        if isinstance(server, QuickStopServer):
            server.contract = self.contract
        for pattern, method, handler in self._routes:
            super().route(pattern, method, handler)
        return self

    def fail_bookings(self, count: int, status: int = 500) -> None:
        """The next ``count`` appointment requests get ``status`` (lookups still answer)."""
        self._booking_failures.extend([status] * count)

    def _free_slots(self, request: Request) -> Response:
        denied = self._checked(request, CALENDAR_VERSION)
        if denied:
            return denied
        args = request.args.to_dict()
        self.slot_queries.append({"calendar_id": request.path.split("/")[2], "args": args,
                                  "version": request.headers.get("Version")})
        problems = [name for name in ("startDate", "endDate")
                    if not re.fullmatch(r"\d{13}", args.get(name, ""))]
        if not problems and not 0 < int(args["endDate"]) - int(args["startDate"]) <= MAX_RANGE_MS:
            problems.append("endDate must be after startDate, at most 31 days")
        try:
            ZoneInfo(args.get("timezone", ""))
        except (KeyError, ValueError):
            problems.append("timezone")
        if problems:
            return json_response({"statusCode": 422, "message": problems}, 422)
        return json_response({**self.slots, "traceId": "trace-slots"})

    def _appointment(self, request: Request) -> Response:
        denied = self._checked(request, CALENDAR_VERSION)
        if denied:
            return denied
        self.booking_attempts += 1
        if self._booking_failures:
            status = self._booking_failures.pop(0)
            return json_response({"statusCode": status, "message": "scripted failure"}, status)
        body = request.get_json()
        problems = [f"property {name} should not exist" for name in set(body) -
                    APPOINTMENT_FIELDS]
        problems += [f"{name} should not be empty" for name in
                     ("calendarId", "locationId", "contactId", "startTime") if not body.get(name)]
        if not problems and body["contactId"] not in self.contacts:
            return self._refuse(body, 400, {"statusCode": 400, "message": "Contact not found"})
        try:
            start = datetime.fromisoformat(body.get("startTime") or "")
        except ValueError:
            start = None
        if start is None or start.tzinfo is None:
            problems.append("startTime must be ISO 8601 with an offset")
        if problems:
            return self._refuse(body, 422, {"statusCode": 422, "message": problems,
                                            "error": "Unprocessable Entity"})
        if any(datetime.fromisoformat(taken) == start for taken in self.taken):
            return self._refuse(body, 422, TAKEN)
        self.taken.add(body["startTime"])  # booked: the next caller finds it taken
        self.appointments.append(body)
        appointment = {"id": f"appt-{next(self._appointment_ids)}", "appointmentStatus":
                       "confirmed", "isRecurring": False, **body}
        return json_response(appointment)

    def _refuse(self, body: dict[str, Any], status: int, answer: dict[str, Any]) -> Response:
        self.refused.append(body)
        return json_response(answer, status)
