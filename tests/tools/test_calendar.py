"""check_availability and book_appointment, through POST /vapi/webhook against a GHL fake."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from tests.conftest import WEBHOOK_AUTH, WEBHOOK_TOKEN
from tests.fakes.ghl_calendar import FakeGhlCalendar
from tests.fakes.http import QuickStopServer
from vapi_bridge import create_app
from vapi_bridge.tools import calendar

CALLER = "+14155550123"
# Tuesday 27 October 2026, 22:00 in New York; already Wednesday 28 October in Tokyo.
NOW = datetime(2026, 10, 28, 2, 0, tzinfo=UTC)
NOT_ANSWERING = "The CRM is not answering right now. Please try again in a moment."


def ms(iso: str) -> str:
    return str(round(datetime.fromisoformat(iso).timestamp() * 1000))


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    monkeypatch.setattr(calendar, "_now", lambda: NOW)


@pytest.fixture(scope="module")
def ghl_server():
    server = QuickStopServer(host="127.0.0.1", threaded=True)  # checks unrouted requests too
    server.start()
    yield server
    server.stop()


@pytest.fixture
def ghl_calendar(ghl_server):
    """A fresh fake (no contacts, slots or bookings) on the module's server."""
    return FakeGhlCalendar().attach(ghl_server)


@pytest.fixture
def env(ghl_calendar):
    return {"GHL_API_BASE_URL": ghl_calendar.url, "GHL_API_KEY": "pit-cal",
            "GHL_LOCATION_ID": "loc-1", "GHL_CALENDAR_ID": "cal-1",
            "DEFAULT_TIMEZONE": "America/New_York", "GHL_CREATE_CONTACTS": None,
            "CLIENTS_FILE": None, "CLIENTS_JSON": None, "WEBHOOK_TOKEN": WEBHOOK_TOKEN}


@pytest.fixture
def app(env):
    return create_app(env)


def call(app, name, arguments, tool_call_id="t1", customer=CALLER):
    payload = {"message": {"type": "tool-calls",
                           "call": {"id": "c1", "assistantId": "a1",
                                    "customer": {"number": customer} if customer else {}},
                           "toolCallList": [{"id": tool_call_id, "type": "function",
                                             "function": {"name": name,
                                                          "arguments": arguments}}]}}
    response = app.test_client().post("/vapi/webhook", data=json.dumps(payload),
                                      content_type="application/json", headers=WEBHOOK_AUTH)
    assert response.status_code == 200
    [answer] = response.get_json()["results"]
    assert answer["toolCallId"] == tool_call_id and answer["name"] == name
    text = answer.get("result", answer.get("error"))
    assert isinstance(text, str) and "\n" not in text
    return answer


def result(app, name, arguments, **kwargs) -> str:
    answer = call(app, name, arguments, **kwargs)
    assert "error" not in answer, answer
    return answer["result"]


def error(app, name, arguments, **kwargs) -> str:
    answer = call(app, name, arguments, **kwargs)
    assert "result" not in answer, answer
    return answer["error"]


# check_availability
def test_availability_asks_ghl_for_the_days_and_reads_them_out(app, ghl_calendar):
    ghl_calendar.slots = {
        "2026-12-03": {"slots": ["2026-12-03T10:00:00-05:00", "2026-12-03T10:30:00-05:00",
                                 "2026-12-03T14:00:00-05:00"]},
        "2026-12-04": {"slots": ["2026-12-04T09:00:00-05:00"]},
    }
    answer = result(app, "check_availability", {"date": "2026-12-03", "days": 2})
    assert answer == "Thursday 3 December at 10:00, 10:30 or 14:00; Friday 4 December at 9:00."
    [query] = ghl_calendar.slot_queries
    assert query == {"calendar_id": "cal-1", "version": "2021-04-15", "args": {
        "startDate": ms("2026-12-03T00:00:00-05:00"),
        "endDate": str(int(ms("2026-12-05T00:00:00-05:00")) - 1),
        "timezone": "America/New_York"}}
    [request] = ghl_calendar.requests
    assert request.path == "/calendars/cal-1/free-slots"
    assert request.headers["Authorization"] == "Bearer pit-cal"


def test_availability_reads_out_a_few_times_of_a_few_days(app, ghl_calendar):
    days = [f"2026-12-0{day}" for day in range(1, 6)]
    ghl_calendar.slots = {day: {"slots": [f"{day}T{hour:02d}:00:00-05:00"
                                          for hour in (16, 9, 11, 13)]} for day in days}
    ghl_calendar.slots["2026-12-01"]["slots"] += ["2026-12-01T09:00:00-05:00", "not a time", 7]
    ghl_calendar.slots["meta"] = {"count": 20}  # neither a date nor slots: ignored
    answer = result(app, "check_availability", {"date": "2026-12-01", "days": 5})
    assert answer == ("Tuesday 1 December at 9:00, 11:00 or 13:00; Wednesday 2 December at 9:00,"
                      " 11:00 or 13:00; Thursday 3 December at 9:00, 11:00 or 13:00."
                      " Other times are free too.")


def test_availability_across_a_dst_change_speaks_local_times(app, ghl_calendar):
    # New York leaves daylight saving time on Sunday 1 November 2026.
    ghl_calendar.slots = {
        "2026-10-31": {"slots": ["2026-10-31T14:00:00Z"]},  # 10:00 EDT
        "2026-11-02": {"slots": ["2026-11-02T15:00:00Z", "2026-11-02T11:00:00-04:00",
                                 "2026-11-02T11:00:00-05:00"]},  # 10:00 EST (twice), 11:00 EST
    }
    answer = result(app, "check_availability", {"date": "2026-10-31", "days": 3})
    assert answer == "Saturday 31 October at 10:00; Monday 2 November at 10:00 or 11:00."
    args = ghl_calendar.slot_queries[0]["args"]
    assert args["startDate"] == ms("2026-10-31T00:00:00-04:00")
    assert args["endDate"] == str(int(ms("2026-11-03T00:00:00-05:00")) - 1)
    assert int(args["endDate"]) + 1 - int(args["startDate"]) == 73 * 3600 * 1000  # 25-hour day


def test_the_timezone_argument_wins_over_the_clients(app, ghl_calendar):
    ghl_calendar.slots = {"2026-12-03": {"slots": ["2026-12-03T10:00:00-05:00"]}}
    answer = result(app, "check_availability",
                    {"date": "2026-12-03", "days": 1, "timezone": "Europe/London"})
    assert answer == "Thursday 3 December at 15:00."
    args = ghl_calendar.slot_queries[0]["args"]
    assert args["timezone"] == "Europe/London"
    assert args["startDate"] == ms("2026-12-03T00:00:00+00:00")


@pytest.mark.parametrize(("timezone", "midnight"), [
    (None, "2026-10-27T00:00:00-04:00"),  # 22:00 on Tuesday in New York
    ("Asia/Tokyo", "2026-10-28T00:00:00+09:00"),  # already Wednesday in Tokyo
])
def test_the_default_is_today_in_the_time_zone_for_three_days(app, ghl_calendar, timezone,
                                                              midnight):
    arguments = {"timezone": timezone} if timezone else {}
    result(app, "check_availability", arguments)
    args = ghl_calendar.slot_queries[0]["args"]
    assert args["startDate"] == ms(midnight)
    assert int(args["endDate"]) + 1 - int(args["startDate"]) == 3 * 24 * 3600 * 1000


def test_times_already_past_today_are_not_offered(app, ghl_calendar):
    ghl_calendar.slots = {"2026-10-27": {"slots": ["2026-10-27T21:30:00-04:00",
                                                   "2026-10-27T22:30:00-04:00"]}}
    assert result(app, "check_availability", {"days": 1}) == "Tuesday 27 October at 22:30."


def test_no_free_times(app, ghl_calendar):
    ghl_calendar.slots = {"2026-12-04": {"slots": []}}
    assert result(app, "check_availability", {"date": "2026-12-03"}) == (
        "No free times between Thursday 3 December and Saturday 5 December.")
    assert result(app, "check_availability", {"date": "2026-12-03", "days": 1},
                  tool_call_id="t2") == "No free times on Thursday 3 December."


def test_arguments_as_a_json_string(app, ghl_calendar):
    ghl_calendar.slots = {"2026-12-03": {"slots": ["2026-12-03T10:00:00-05:00"]}}
    arguments = json.dumps({"date": "2026-12-03", "days": "1"})
    assert result(app, "check_availability", arguments) == "Thursday 3 December at 10:00."


@pytest.mark.parametrize(("arguments", "named"), [
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"timezone": "../../etc/passwd"}, "timezone"),
    ({"timezone": 5}, "timezone"),
    ({"date": "03/12/2026"}, "date"),
    ({"date": "2026-02-30"}, "date"),
    ({"date": 20261203}, "date"),
    ({"date": "2026-10-26"}, "date"),  # yesterday in New York
    ({"days": 0}, "days"),
    ({"days": 15}, "days"),
    ({"days": "two"}, "days"),
    ({"days": 2.5}, "days"),
    ({"days": True}, "days"),
    ({"calendarId": "../contacts"}, "calendarId"),
])
def test_bad_arguments_are_named_and_ghl_is_not_asked(app, ghl_calendar, arguments, named):
    assert named in error(app, "check_availability", arguments)
    assert ghl_calendar.requests == []


def test_without_a_calendar_id_it_must_be_given(env, ghl_calendar):
    app = create_app({**env, "GHL_CALENDAR_ID": ""})
    assert "calendarId" in error(app, "check_availability", {})
    assert "calendarId" in error(app, "book_appointment", {"startTime": "2026-12-03T10:00"},
                                 tool_call_id="t2")
    assert ghl_calendar.requests == []
    result(app, "check_availability", {"calendarId": "cal-9"}, tool_call_id="t3")
    assert ghl_calendar.slot_queries[0]["calendar_id"] == "cal-9"


def test_without_ghl_the_tools_say_so(ghl_calendar):
    app = create_app({"GHL_API_BASE_URL": ghl_calendar.url, "GHL_CALENDAR_ID": "cal-1",
                      "GHL_API_KEY": None, "GHL_LOCATION_ID": None})
    assert "not set up" in error(app, "check_availability", {})
    assert "not set up" in error(app, "book_appointment", {"startTime": "2026-12-03T10:00"},
                                 tool_call_id="t2")
    assert ghl_calendar.requests == []


# book_appointment
def test_booking_for_the_callers_existing_contact(app, ghl_calendar):
    contact_id = ghl_calendar.add_contact(CALLER, "loc-1")
    answer = result(app, "book_appointment", {"startTime": "2026-12-03T10:00"})
    assert answer == "Booked for Thursday 3 December at 10:00."
    assert ghl_calendar.appointments == [{
        "calendarId": "cal-1", "locationId": "loc-1", "contactId": contact_id,
        "startTime": "2026-12-03T10:00:00-05:00", "title": "Appointment booked by phone"}]
    assert ghl_calendar.upserts == []
    lookup, booking = ghl_calendar.requests
    assert (lookup.path, lookup.args["number"]) == ("/contacts/search/duplicate", CALLER)
    assert (booking.method, booking.path, booking.headers["Version"]) == (
        "POST", "/calendars/events/appointments", "2021-04-15")


def test_booking_creates_the_contact_when_there_is_none(app, ghl_calendar):
    arguments = {"startTime": "2026-12-03T15:00:00Z", "endTime": "2026-12-03T10:45:00",
                 "title": " Cleaning ", "name": "Ana Núñez", "email": "ana@example.com",
                 "phone": "+14155550999"}
    answer = result(app, "book_appointment", arguments)
    assert answer == "Booked for Thursday 3 December at 10:00."
    [upsert] = ghl_calendar.upserts
    assert upsert == {"phone": "+14155550999", "email": "ana@example.com", "name": "Ana Núñez",
                      "source": "Vapi call", "locationId": "loc-1"}
    [contact_id] = ghl_calendar.contacts
    assert ghl_calendar.appointments == [{
        "calendarId": "cal-1", "locationId": "loc-1", "contactId": contact_id,
        "startTime": "2026-12-03T10:00:00-05:00", "endTime": "2026-12-03T10:45:00-05:00",
        "title": "Cleaning"}]
    assert ghl_calendar.requests[0].args["number"] == "+14155550999"  # the argument, not caller


def test_booking_sends_the_phone_in_e164(app, ghl_calendar):
    result(app, "book_appointment", {"startTime": "2026-12-03T10:00", "phone": "(415) 555-0199"})
    assert ghl_calendar.requests[0].args["number"] == "+14155550199"
    assert ghl_calendar.upserts[0]["phone"] == "+14155550199"
    assert "phone" in error(app, "book_appointment", {"startTime": "2026-12-03T11:00",
                                                       "phone": "555-0199"}, tool_call_id="t2")
    assert len(ghl_calendar.requests) == 3  # the unreadable number asked nobody


def test_booking_in_the_arguments_time_zone(app, ghl_calendar):
    ghl_calendar.add_contact(CALLER, "loc-1")
    answer = result(app, "book_appointment", {"startTime": "2026-12-03T10:00",
                                              "timezone": "Europe/Berlin", "calendarId": "cal-2"})
    assert answer == "Booked for Thursday 3 December at 10:00."
    [booked] = ghl_calendar.appointments
    assert (booked["startTime"], booked["calendarId"]) == ("2026-12-03T10:00:00+01:00", "cal-2")


def test_a_slot_taken_meanwhile_is_said_so(app, ghl_calendar):
    ghl_calendar.add_contact(CALLER, "loc-1")
    ghl_calendar.taken = {"2026-12-03T15:00:00Z"}
    taken = error(app, "book_appointment", {"startTime": "2026-12-03T10:00:00-05:00"})
    assert taken == "That time was just taken. Shall I check other times?"
    assert ghl_calendar.appointments == [] and len(ghl_calendar.refused) == 1
    # Another call's booking takes a slot too.
    result(app, "book_appointment", {"startTime": "2026-12-03T11:00"}, tool_call_id="t2")
    assert error(app, "book_appointment", {"startTime": "2026-12-03T11:00"},
                 tool_call_id="t3") == taken


@pytest.mark.parametrize(("arguments", "named"), [
    ({}, "startTime"),
    ({"startTime": ""}, "startTime"),
    ({"startTime": "tomorrow at ten"}, "startTime"),
    ({"startTime": "2026-12-03"}, "startTime"),  # a day, no time
    ({"startTime": 1796310000}, "startTime"),
    ({"startTime": "2026-10-27T21:00"}, "startTime"),  # an hour ago
    ({"startTime": "2027-03-14T02:30"}, "startTime"),  # the hour New York skips
    ({"startTime": "2026-12-03T10:00", "endTime": "2026-12-03T09:00"}, "endTime"),
    ({"startTime": "2026-12-03T10:00", "endTime": "eleven"}, "endTime"),
    ({"startTime": "2026-12-03T10:00", "timezone": "Nowhere/Else"}, "timezone"),
    ({"startTime": "2026-12-03T10:00", "email": "not-an-email"}, "email"),
    ({"startTime": "2026-12-03T10:00", "phone": "call me"}, "phone"),
    ({"startTime": "2026-12-03T10:00", "title": ["x"]}, "title"),
])
def test_bad_booking_arguments_are_named_and_nothing_is_booked(app, ghl_calendar, arguments,
                                                               named):
    assert named in error(app, "book_appointment", arguments)
    assert ghl_calendar.requests == []  # checked before the contact is looked up


def test_booking_without_any_phone_or_email(app, ghl_calendar):
    message = error(app, "book_appointment", {"startTime": "2026-12-03T10:00"}, customer=None)
    assert "phone" in message and "email" in message
    assert ghl_calendar.requests == []
    # An email alone is enough: the contact is upserted by it.
    result(app, "book_appointment", {"startTime": "2026-12-03T10:00", "email": "a@example.com"},
           customer=None, tool_call_id="t2")
    assert ghl_calendar.upserts[0]["email"] == "a@example.com"
    assert "phone" not in ghl_calendar.upserts[0]


def test_no_contact_is_created_when_ghl_create_contacts_is_false(env, ghl_calendar):
    app = create_app({**env, "GHL_CREATE_CONTACTS": "false"})
    assert "records" in error(app, "book_appointment", {"startTime": "2026-12-03T10:00"})
    assert ghl_calendar.upserts == [] and ghl_calendar.booking_attempts == 0


def test_ghl_down_is_not_answering_and_the_repeat_runs_again(app, ghl_calendar):
    ghl_calendar.add_contact(CALLER, "loc-1")
    ghl_calendar.fail_bookings(4, 500)  # the first try and the GHL client's three retries
    arguments = {"startTime": "2026-12-03T10:00"}
    assert error(app, "book_appointment", arguments, tool_call_id="t-500") == NOT_ANSWERING
    assert ghl_calendar.booking_attempts == 4 and ghl_calendar.appointments == []
    # Vapi delivers the same toolCallId again: the claim was released, so it runs.
    assert result(app, "book_appointment", arguments, tool_call_id="t-500") == (
        "Booked for Thursday 3 December at 10:00.")
    assert len(ghl_calendar.appointments) == 1


def test_a_repeated_booking_is_answered_from_the_store(app, ghl_calendar):
    ghl_calendar.add_contact(CALLER, "loc-1")
    arguments = {"startTime": "2026-12-03T10:00"}
    first = call(app, "book_appointment", arguments, tool_call_id="t-once")
    seen = len(ghl_calendar.requests)
    again = call(app, "book_appointment", arguments, tool_call_id="t-once")
    assert again == first and first["result"].startswith("Booked")
    assert len(ghl_calendar.requests) == seen and len(ghl_calendar.appointments) == 1


def test_nothing_personal_reaches_the_log(app, ghl_calendar, caplog):
    caplog.set_level(logging.DEBUG)
    ghl_calendar.taken = {"2026-12-03T10:30:00-05:00"}
    result(app, "book_appointment", {"startTime": "2026-12-03T10:00", "name": "Ana Secret",
                                     "email": "ana@example.com", "title": "Private matter"})
    error(app, "book_appointment", {"startTime": "2026-12-03T10:30", "phone": "+14155550777"},
          tool_call_id="t2")
    # The app's own records (the fake server's access log is not the app's).
    logged = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records
                       if r.name != "werkzeug")
    for secret in (CALLER, "4155550123", "+14155550777", "ana@example.com", "Ana Secret",
                   "Private matter", "pit-cal"):
        assert secret not in logged
    assert "appointmentId=appt-1" in logged


def test_a_later_booking_in_the_call_makes_only_its_own_request(app, ghl_calendar):
    """The caller's contact is found once per call (tools/contacts.py), also when it is gone."""
    old = ghl_calendar.add_contact(CALLER, "loc-1")
    result(app, "book_appointment", {"startTime": "2026-12-03T10:00"})
    ghl_calendar.requests.clear()
    result(app, "book_appointment", {"startTime": "2026-12-03T11:00"}, tool_call_id="t2")
    assert [r.path for r in ghl_calendar.requests] == ["/calendars/events/appointments"]
    ghl_calendar.remove_contact(old, 400)  # GoHighLevel: "Contact with id ... not found"
    new = ghl_calendar.add_contact(CALLER, "loc-1")
    result(app, "book_appointment", {"startTime": "2026-12-03T12:00"}, tool_call_id="t3")
    assert [r.path for r in ghl_calendar.requests][1:] == [
        "/calendars/events/appointments", "/contacts/search/duplicate",
        "/calendars/events/appointments"]
    assert [a["contactId"] for a in ghl_calendar.appointments] == [old, old, new]
