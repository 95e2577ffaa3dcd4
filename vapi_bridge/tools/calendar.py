"""Calendar tools (GoHighLevel): ``check_availability`` and ``book_appointment``.

Both speak in the client's time zone (``timezone`` argument, else the client's) and answer
one short line the assistant can read out. Calendars want ``Version: 2021-04-15``
(reference A6). Arguments, phone numbers and emails never reach the log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..context import Context
from ..ids import is_url_id
from ..integrations import DeliveryError
from ..integrations.ghl import GhlClient
from ..phones import to_e164
from . import ToolError, tool
from .contacts import Contact, with_contact

log = logging.getLogger(__name__)

CALENDAR_VERSION = "2021-04-15"
DEFAULT_DAYS = 3
MAX_DAYS = 14
SAY_DAYS = 3  # days read out, at most
SAY_SLOTS = 3  # times read out per day, at most
DEFAULT_TITLE = "Appointment booked by phone"
SLOT_TAKEN = "That time was just taken. Shall I check other times?"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_PHONE = re.compile(r"\+?[0-9 ().-]{7,20}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


def _now() -> datetime:
    """The current time (tests replace it)."""
    return datetime.now(UTC)


@tool("check_availability")
def check_availability(arguments: dict[str, Any], ctx: Context) -> str:
    ghl = _ghl(ctx)
    calendar_id = _calendar_id(arguments, ctx)
    zone = _zone(arguments, ctx)
    today = _now().astimezone(zone).date()
    first = _date(arguments.get("date"), today)
    days = _days(arguments.get("days"))
    start, end = _midnight(first, zone), _midnight(first + timedelta(days=days), zone)
    body = ghl.request("GET", "/calendars/{}/free-slots", calendar_id, version=CALENDAR_VERSION,
                       params={"startDate": _epoch_ms(start), "endDate": _epoch_ms(end) - 1,
                               "timezone": zone.key})
    earliest = max(start, _now())
    slots = sorted({slot for slot in _slots(body, zone) if earliest <= slot < end})
    if not slots:
        last = first + timedelta(days=days - 1)
        if last == first:
            return f"No free times on {_say_date(first)}."
        return f"No free times between {_say_date(first)} and {_say_date(last)}."
    by_day: dict[date, list[datetime]] = {}
    for slot in slots:
        by_day.setdefault(slot.date(), []).append(slot)
    said = [f"{_say_date(day)} at {_or(times[:SAY_SLOTS])}"
            for day, times in list(by_day.items())[:SAY_DAYS]]
    more = len(by_day) > SAY_DAYS or any(len(t) > SAY_SLOTS for t in by_day.values())
    return "; ".join(said) + "." + (" Other times are free too." if more else "")


@tool("book_appointment")
def book_appointment(arguments: dict[str, Any], ctx: Context) -> str:
    ghl = _ghl(ctx)
    calendar_id = _calendar_id(arguments, ctx)
    zone = _zone(arguments, ctx)
    start = _date_time(arguments.get("startTime"), "startTime", zone)
    if start < _now():
        raise ToolError("The startTime is in the past. Please choose a later time.")
    end = None
    if arguments.get("endTime") not in (None, ""):
        end = _date_time(arguments["endTime"], "endTime", zone)
        if end <= start:
            raise ToolError("The endTime must be after the startTime.")
    title = arguments.get("title") or DEFAULT_TITLE
    if not isinstance(title, str):
        raise ToolError("The title must be text.")
    title = title.strip()[:200] or DEFAULT_TITLE
    body = {"calendarId": calendar_id, "locationId": ghl.location_id,
            "startTime": start.isoformat(), "title": title}
    if end is not None:
        body["endTime"] = end.isoformat()

    def book(contact: Contact) -> dict[str, Any]:
        return ghl.request("POST", "/calendars/events/appointments", version=CALENDAR_VERSION,
                           json={**body, "contactId": contact.id})

    try:
        booked = _with_contact(arguments, ghl, ctx, book)
    except DeliveryError as exc:
        if exc.status in (400, 409, 422) and re.search(r"slot|availab", str(exc), re.I):
            log.info("[TOOLS] book_appointment: slot taken calendarId=%s requestId=%s callId=%s",
                     calendar_id, ctx.request_id, ctx.call_id)
            raise ToolError(SLOT_TAKEN) from None
        raise
    log.info("[TOOLS] book_appointment: booked appointmentId=%s calendarId=%s requestId=%s"
             " callId=%s", booked.get("id"), calendar_id, ctx.request_id, ctx.call_id)
    return f"Booked for {_say_date(start.date())} at {_say_time(start)}."


# Arguments
def _ghl(ctx: Context) -> GhlClient:
    ghl = ctx.integrations.ghl(ctx.client) if ctx.client is not None else None
    if ghl is None:
        raise ToolError("The calendar is not set up for this line, so I cannot check or book.")
    return ghl


def _calendar_id(arguments: dict[str, Any], ctx: Context) -> str:
    calendar_id = arguments.get("calendarId") or (ctx.client and ctx.client.ghl_calendar_id)
    if not calendar_id:
        raise ToolError("No calendar is set up for this line: a calendarId is needed.")
    if not is_url_id(calendar_id):
        raise ToolError("The calendarId is not a valid calendar id.")
    return calendar_id


def _zone(arguments: dict[str, Any], ctx: Context) -> ZoneInfo:
    name = arguments.get("timezone") or (ctx.client.timezone if ctx.client else None) or "UTC"
    try:
        if not isinstance(name, str):
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        shown = name if isinstance(name, str) and len(name) <= 40 else "given"
        raise ToolError(f"The timezone {shown} is not a time zone I know. Use a name like"
                        " America/New_York.") from None


def _date(value: Any, today: date) -> date:
    if value in (None, ""):
        return today
    try:
        if not isinstance(value, str) or not _DATE.fullmatch(value.strip()):
            raise ValueError(value)
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise ToolError("The date must be a day written like 2026-12-03.") from None
    if day < today:
        raise ToolError(f"The date {day.isoformat()} is in the past. Please ask for today or a"
                        " later day.")
    return day


def _days(value: Any) -> int:
    if value in (None, ""):
        return DEFAULT_DAYS
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(value)
        number = float(value)
        if number != int(number):
            raise ValueError(value)
        days = int(number)
    except (ValueError, OverflowError):
        raise ToolError(f"The days must be a whole number from 1 to {MAX_DAYS}.") from None
    if not 1 <= days <= MAX_DAYS:
        raise ToolError(f"The days must be a whole number from 1 to {MAX_DAYS}.")
    return days


def _date_time(value: Any, name: str, zone: ZoneInfo) -> datetime:
    """An ISO-8601 date and time; without an offset it is a local time in ``zone``."""
    if value in (None, ""):
        raise ToolError(f"The {name} is missing: give a date and time like 2026-12-03T10:00.")
    try:
        if not isinstance(value, str) or not _DATE_TIME.match(value.strip()):
            raise ValueError(value)
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ToolError(f"The {name} must be a date and time like 2026-12-03T10:00.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
        if moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None) \
                != moment.replace(tzinfo=None):
            raise ToolError(f"The {name} does not exist in that time zone: the clocks change"
                            " then. Please choose another time.")
    return moment.astimezone(zone).replace(microsecond=0)


def _with_contact(arguments: dict[str, Any], ghl: GhlClient, ctx: Context,
                  book: Callable[[Contact], dict[str, Any]]) -> dict[str, Any]:
    """``book`` for the caller's contact (or the given phone/email's), created when there is
    none; the caller's is resolved once per call (``contacts.with_contact``)."""
    phone, email, name = (arguments.get(key) for key in ("phone", "email", "name"))
    phone = phone or ctx.customer_number
    if phone:  # sent in E.164 only, read with the client's default country
        country = ctx.client.default_country if ctx.client else "US"
        phone = (to_e164(phone.strip(), country)
                 if isinstance(phone, str) and _PHONE.fullmatch(phone.strip()) else None)
        if phone is None:
            raise ToolError("The phone must be a phone number like +14155550123.")
    if email and (not isinstance(email, str) or not _EMAIL.fullmatch(email.strip())):
        raise ToolError("The email is not a valid email address.")
    if name and not isinstance(name, str):
        raise ToolError("The name must be text.")
    if not phone and not email:
        raise ToolError("I need a phone number or an email to book with: give a phone or email.")

    def search() -> dict[str, Any]:
        found = ghl.find_contact_by_phone(phone) if phone else None
        if found:
            return found
        if not ctx.settings.ghl_create_contacts:
            raise ToolError("I could not find your details in our records, so I cannot book"
                            " this.")
        return ghl.upsert_contact({"phone": phone, "email": email and email.strip(),
                                   "name": name and name.strip(), "source": "Vapi call"})

    return with_contact(ctx, ghl, phone, search, book)  # type: ignore[return-value]


# Free slots
def _slots(body: dict[str, Any], zone: ZoneInfo) -> list[datetime]:
    """The slots of a free-slots answer (a map keyed by date, plus ``traceId``), in ``zone``."""
    slots = []
    for value in body.values():
        if not isinstance(value, dict) or not isinstance(value.get("slots"), list):
            continue
        for text in value["slots"]:
            try:
                moment = datetime.fromisoformat(text)
            except (TypeError, ValueError):
                continue
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
            slots.append(moment.astimezone(zone))
    return slots


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


def _epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


# Speaking
def _say_date(day: date) -> str:
    return f"{_WEEKDAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"


def _say_time(moment: datetime) -> str:
    return f"{moment.hour}:{moment.minute:02d}"


def _or(times: list[datetime]) -> str:
    said = [_say_time(moment) for moment in times]
    return said[0] if len(said) == 1 else f"{', '.join(said[:-1])} or {said[-1]}"
