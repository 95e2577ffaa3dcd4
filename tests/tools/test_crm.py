"""The CRM tools through POST /vapi/webhook, against the GoHighLevel fake over sockets.

Both modes: workflow (incoming-webhook URLs, the original's payload) and the API v2.
"""

from __future__ import annotations

import json
import logging
import re
import time

import pytest

from tests.conftest import WEBHOOK_AUTH, WEBHOOK_TOKEN
from tests.fakes.ghl_crm import SEEDED_NOTE_DATE, epoch_ms
from vapi_bridge import create_app, tools

CALLER = "+14155550123"
OTHER = "+14155559876"
TOKEN = "pit-default"
LOCATION = "loc-default"
AUTH = f"Bearer {TOKEN}"
CONTACTS_VERSION = "2021-07-28"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
NOT_ANSWERING = "The CRM is not answering right now. Please try again in a moment."
# Read by the app but not cleared by conftest's clean_env.
MORE_SETTINGS = ("GHL_API_BASE_URL", "GHL_CREATE_CONTACTS", "GHL_CALENDAR_ID", "DEFAULT_TIMEZONE",
                 *(f"GHL_INCOMING_WEBHOOK_URL_{kind}" for kind in ("DEFAULT", "BOOKING",
                                                                   "DEPOSIT")))


@pytest.fixture(autouse=True)
def no_ambient_crm_settings(monkeypatch):
    for name in MORE_SETTINGS:
        monkeypatch.delenv(name, raising=False)


def api_env(crm, **more):
    return {"GHL_API_BASE_URL": crm.url, "GHL_API_KEY": TOKEN, "GHL_LOCATION_ID": LOCATION,
            "WEBHOOK_TOKEN": WEBHOOK_TOKEN, **more}


def workflow_env(crm, kinds=("default", "booking", "deposit")):
    return {"GHL_API_BASE_URL": crm.url, "WEBHOOK_TOKEN": WEBHOOK_TOKEN,
            **{f"GHL_INCOMING_WEBHOOK_URL_{kind.upper()}": crm.hook_url(kind) for kind in kinds}}


@pytest.fixture
def api_app(crm):
    return create_app(api_env(crm))


@pytest.fixture
def workflow_app(crm):
    return create_app(workflow_env(crm))


def message(*calls, customer=CALLER, key="toolCallList"):
    call = {"id": "c1", "assistantId": "a1"}
    if customer:
        call["customer"] = {"number": customer}
    return {"message": {"type": "tool-calls", "call": call, key: list(calls)}}


def item(tool_call_id, name, arguments):
    return {"id": tool_call_id, "type": "function",
            "function": {"name": name, "arguments": arguments}}


def post(app, payload):
    response = app.test_client().post("/vapi/webhook", data=json.dumps(payload),
                                      content_type="application/json", headers=WEBHOOK_AUTH)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["results"]


def run(app, name, arguments, tool_call_id="t1", customer=CALLER):
    """One tool call; its answer as ``{"result": ...}`` or ``{"error": ...}``."""
    [answer] = post(app, message(item(tool_call_id, name, arguments), customer=customer))
    assert (answer["toolCallId"], answer["name"]) == (tool_call_id, name)
    return {k: v for k, v in answer.items() if k in ("result", "error")}


def seen(crm):
    """What the fake received: method, path, query, Version, Authorization, JSON body."""
    return [(r.method, r.path, dict(r.args), r.headers.get("Version"),
             r.headers.get("Authorization"),
             r.get_json(silent=True) if r.method in ("POST", "PUT") else None)
            for r in crm.requests]


def duplicate(number=CALLER):
    return ("GET", "/contacts/search/duplicate", {"locationId": LOCATION, "number": number},
            CONTACTS_VERSION, AUTH, None)


def api(method, path, body=None, query=None, version=CONTACTS_VERSION):
    return (method, path, query or {}, version, AUTH, body)


def hooked(crm):
    """The workflow bodies, with the timestamp checked and taken out."""
    bodies = []
    for kind, body in crm.hooks:
        assert TIMESTAMP.fullmatch(body.pop("timestamp"))
        bodies.append((kind, body))
    return bodies


# Workflow mode: the original's payloads
WORKFLOW_CASES = [
    ("send_sms", {"phone": OTHER, "body": "See you Tuesday", "firstName": "Ana"},
     {"phone": OTHER, "firstName": "Ana", "callId": "c1", "body": "See you Tuesday"},
     "The text message is on its way."),
    ("upsert_contact", {"email": "ana@example.com", "firstName": "Ana", "lastName": "Núñez"},
     {"email": "ana@example.com", "firstName": "Ana", "lastName": "Núñez"},
     "The contact details were sent to the CRM."),
    ("add_tag", {"tag": "vip", "phone": OTHER}, {"phone": OTHER, "tag": "vip"},
     "The tag was sent to the CRM."),
    ("add_note", {"note": "Wants a call back", "email": "ana@example.com"},
     {"email": "ana@example.com", "note": "Wants a call back"}, "The note was sent to the CRM."),
    ("update_stage", {"pipelineId": "p1", "stageId": "s2", "note": "Qualified"},
     {"phone": CALLER, "pipelineId": "p1", "stageId": "s2", "note": "Qualified"},
     "The stage change was sent to the CRM."),
]


@pytest.mark.parametrize(("name", "arguments", "body", "said"), WORKFLOW_CASES,
                         ids=[case[0] for case in WORKFLOW_CASES])
def test_workflow_mode_posts_the_arguments_action_and_timestamp(crm, workflow_app, name,
                                                                 arguments, body, said):
    answer = run(workflow_app, name, arguments)
    assert answer == {"result": said}
    assert hooked(crm) == [("default", {**body, "action": name})]
    assert [(r.method, r.path) for r in crm.requests] == [("POST", "/hooks/default")]
    # The same toolCallId again: the stored answer, no second workflow run.
    assert run(workflow_app, name, arguments) == answer
    assert len(crm.requests) == 1


@pytest.mark.parametrize(("template", "kinds", "target"), [
    ("booking", ("default", "booking", "deposit"), "booking"),
    ("deposit", ("default", "booking", "deposit"), "deposit"),
    ("Booking", ("default", "booking", "deposit"), "booking"),
    ("booking", ("default",), "default"),
    (None, ("default", "booking"), "default"),
])
def test_send_sms_goes_to_the_template_workflow_if_there_is_one(crm, template, kinds, target):
    app = create_app(workflow_env(crm, kinds))
    arguments = {"phone": OTHER, "body": "Your deposit link", "callId": "call-9",
                 "template": template}
    assert run(app, "send_sms", arguments) == {"result": "The text message is on its way."}
    expected = {"phone": OTHER, "callId": "call-9", "body": "Your deposit link",
                "action": "send_sms"}
    if template:
        expected["template"] = template.lower()
    assert hooked(crm) == [(target, expected)]


@pytest.mark.parametrize(("kinds", "name", "arguments", "error"), [
    (("booking",), "send_sms", {"body": "hi"},
     "No GoHighLevel workflow is set up for text messages."),
    (("booking",), "send_sms", {"body": "hi", "template": "deposit"},
     "No GoHighLevel workflow is set up for deposit text messages."),
    (("deposit",), "upsert_contact", {}, "No GoHighLevel workflow is set up for saving contacts."),
    (("deposit",), "add_tag", {"tag": "x"}, "No GoHighLevel workflow is set up for adding tags."),
    (("deposit",), "add_note", {"note": "x"},
     "No GoHighLevel workflow is set up for adding notes."),
    (("deposit",), "update_stage", {"pipelineId": "p", "stageId": "s"},
     "No GoHighLevel workflow is set up for pipeline stages."),
])
def test_a_missing_workflow_url_is_said(crm, kinds, name, arguments, error):
    app = create_app(workflow_env(crm, kinds) | {"GHL_API_KEY": TOKEN,
                                                 "GHL_LOCATION_ID": LOCATION})
    assert run(app, name, arguments) == {"error": error}
    assert crm.requests == []  # workflow mode stays workflow mode, even with a token


def test_the_mode_is_per_client(crm):
    clients = [{"name": "agency", "assistant_ids": ["a1"],
                "ghl_incoming_webhook_urls": {"default": crm.hook_url("agency")}}]
    app = create_app(api_env(crm, CLIENTS_JSON=json.dumps(clients)))
    assert run(app, "add_tag", {"tag": "vip"}) == {"result": "The tag was sent to the CRM."}
    assert hooked(crm) == [("agency", {"phone": CALLER, "tag": "vip", "action": "add_tag"})]
    payload = message(item("t2", "add_tag", {"tag": "vip"}))
    payload["message"]["call"]["assistantId"] = "someone-else"  # the default client: API mode
    payload["message"]["call"]["id"] = "c2"  # its own call (c1 is the agency's)
    assert post(app, payload)[0]["result"] == "The tag is added."
    assert [r.path for r in crm.requests][1:] == ["/contacts/search/duplicate", "/contacts/upsert",
                                                  "/contacts/contact-1/tags"]


def test_workflow_errors(crm, workflow_app):
    crm.fail_next(1, 503)
    assert run(workflow_app, "add_tag", {"tag": "vip"}) == {"error": NOT_ANSWERING}
    assert run(workflow_app, "add_tag", {"tag": "vip"}) == {
        "result": "The tag was sent to the CRM."}
    assert len(crm.requests) == 2  # a passing outage: the repeat tried again
    crm.fail_next(1, 404)
    refused = {"error": "The CRM refused that request (404)."}
    assert run(workflow_app, "add_note", {"note": "x"}, tool_call_id="t2") == refused
    assert run(workflow_app, "add_note", {"note": "x"}, tool_call_id="t2") == refused
    assert len(crm.requests) == 3  # refused for good: the repeat asked nobody


def test_an_unreachable_workflow_is_not_answering(crm):
    app = create_app({"GHL_INCOMING_WEBHOOK_URL_DEFAULT": "http://127.0.0.1:1/hook",
                      "WEBHOOK_TOKEN": WEBHOOK_TOKEN})
    assert run(app, "add_tag", {"tag": "vip"}) == {"error": NOT_ANSWERING}


# API mode
def test_add_tag_for_a_known_caller(crm, api_app):
    contact = crm.add_contact(CALLER, LOCATION)
    assert run(api_app, "add_tag", {"tag": "vip"}) == {"result": "The tag is added."}
    assert seen(crm) == [duplicate(), api("POST", f"/contacts/{contact}/tags", {"tags": ["vip"]})]
    assert crm.tags == [{"contact_id": contact, "tags": ["vip"], "token": TOKEN}]


def test_add_tag_creates_an_unknown_contact(crm, api_app):
    assert run(api_app, "add_tag", {"tag": "vip", "phone": OTHER}) == {
        "result": "The tag is added."}
    assert seen(crm) == [
        duplicate(OTHER),
        api("POST", "/contacts/upsert", {"phone": OTHER, "locationId": LOCATION}),
        api("POST", "/contacts/contact-1/tags", {"tags": ["vip"]})]


def test_no_contact_is_created_when_creating_is_off(crm):
    app = create_app(api_env(crm, GHL_CREATE_CONTACTS="false"))
    assert run(app, "add_note", {"note": "x"}) == {
        "error": "There is no contact with that phone number or email in the CRM."}
    assert [r.path for r in crm.requests] == ["/contacts/search/duplicate"]


def test_add_note_by_email(crm, api_app):
    contact = crm.add_contact(None, LOCATION, email="ana@example.com")
    assert run(api_app, "add_note", {"note": "Prefers mornings", "email": "ana@example.com"}) == {
        "result": "The note is added."}
    assert seen(crm) == [
        ("GET", "/contacts/search/duplicate", {"locationId": LOCATION, "email": "ana@example.com"},
         CONTACTS_VERSION, AUTH, None),
        api("POST", f"/contacts/{contact}/notes", {"body": "Prefers mornings"})]


def test_send_sms_through_conversations(crm, api_app):
    contact = crm.add_contact(CALLER, LOCATION)
    assert run(api_app, "send_sms", {"body": "Your booking is confirmed", "template": "booking"}
               ) == {"result": "The text message was sent."}
    assert seen(crm) == [duplicate(), api(
        "POST", "/conversations/messages",
        {"type": "SMS", "contactId": contact, "message": "Your booking is confirmed"},
        version="2021-04-15")]
    assert crm.messages == [{"contact_id": contact, "type": "SMS",
                             "message": "Your booking is confirmed", "token": TOKEN}]


def test_send_sms_to_a_new_number_creates_the_contact_with_its_name(crm, api_app):
    assert run(api_app, "send_sms", {"phone": OTHER, "body": "Hi", "firstName": "Ana"}) == {
        "result": "The text message was sent."}
    assert seen(crm)[1] == api("POST", "/contacts/upsert",
                               {"phone": OTHER, "firstName": "Ana", "locationId": LOCATION})
    assert crm.messages[0]["contact_id"] == "contact-1"


def test_upsert_contact(crm, api_app):
    arguments = {"email": "ana@example.com", "firstName": "Ana", "lastName": "Núñez",
                 "name": "Ana Núñez"}
    assert run(api_app, "upsert_contact", arguments) == {"result": "The contact is saved."}
    # No phone or email given: the caller's number is the phone.
    assert run(api_app, "upsert_contact", {"firstName": "Bo"}, tool_call_id="t2") == {
        "result": "The contact is saved."}
    assert seen(crm) == [
        api("POST", "/contacts/upsert", {**arguments, "locationId": LOCATION}),
        api("POST", "/contacts/upsert", {"phone": CALLER, "firstName": "Bo",
                                         "locationId": LOCATION})]


def search(contact, pipeline="p1", after=None):
    """One page of the contact's opportunities in the pipeline, every status, 100 a page."""
    query = {"location_id": LOCATION, "contact_id": contact, "pipeline_id": pipeline,
             "status": "all", "limit": "100"}
    if after:
        query |= {"startAfter": after[0], "startAfterId": after[1]}
    return api("GET", "/opportunities/search", query=query)


def test_update_stage_moves_the_open_opportunity(crm, api_app):
    contact = crm.add_contact(CALLER, LOCATION)
    crm.add_opportunity(contact, "p1", "s1")
    crm.add_opportunity(contact, "p1", "s9", status="lost")  # newer, but closed
    crm.add_opportunity(contact, "p2", "x1")
    assert run(api_app, "update_stage", {"pipelineId": "p1", "stageId": "s2"}) == {
        "result": "The opportunity was moved to that stage."}
    assert seen(crm) == [duplicate(), search(contact),
                         api("PUT", "/opportunities/opp-1", {"pipelineStageId": "s2"})]
    assert crm.opportunities["opp-1"]["pipelineStageId"] == "s2"


def test_update_stage_already_there_with_a_note(crm, api_app):
    contact = crm.add_contact(CALLER, LOCATION)
    crm.add_opportunity(contact, "p1", "s2")
    assert run(api_app, "update_stage", {"pipelineId": "p1", "stageId": "s2", "note": "Hot"}) == {
        "result": "The opportunity is already in that stage. The note is added."}
    assert seen(crm) == [duplicate(), search(contact),
                         api("POST", f"/contacts/{contact}/notes", {"body": "Hot"})]


def test_update_stage_creates_the_opportunity(crm, api_app):
    contact = crm.add_contact(CALLER, LOCATION, firstName="Ana", lastName="Núñez")
    assert run(api_app, "update_stage", {"pipelineId": "p1", "stageId": "s1"}) == {
        "result": "A new opportunity was created in that stage."}
    assert seen(crm) == [duplicate(), search(contact), api("POST", "/opportunities/", {
        "pipelineId": "p1", "locationId": LOCATION, "name": "Ana Núñez", "status": "open",
        "contactId": contact, "pipelineStageId": "s1"})]
    assert crm.opportunities["opp-1"]["pipelineStageId"] == "s1"


def test_lookup_contact_of_a_known_caller(crm, api_app):
    contact = crm.add_contact(CALLER, LOCATION, firstName="Ana", lastName="Núñez",
                              email="ana@example.com", tags=["vip", "booked"])
    crm.add_seeded_note(contact, "older", "2025-12-30T10:00:00.000Z")
    crm.add_seeded_note(contact, "newer", SEEDED_NOTE_DATE)
    answer = run(api_app, "lookup_contact", {})
    assert json.loads(answer["result"]) == {
        "found": True, "name": "Ana Núñez", "firstName": "Ana", "email": "ana@example.com",
        "tags": ["vip", "booked"], "lastNoteDate": "2026-01-05"}
    assert seen(crm) == [duplicate(), api("GET", f"/contacts/{contact}/notes")]


def test_lookup_contact_reads_the_whole_contact_when_the_search_has_no_tags(crm):
    app = create_app(api_env(crm, DEFAULT_TIMEZONE="Pacific/Kiritimati"))  # UTC+14
    contact = crm.add_contact(None, LOCATION, email="bo@example.com", name="Bo")
    crm.add_seeded_note(contact, "late", "2026-01-05T20:00:00.000Z")
    answer = run(app, "lookup_contact", {"email": "bo@example.com"})
    assert json.loads(answer["result"]) == {
        "found": True, "name": "Bo", "firstName": None, "email": "bo@example.com", "tags": [],
        "lastNoteDate": "2026-01-06"}  # the note's date where the client is
    search, *reads = [r.path for r in crm.requests]  # the contact and its notes: at once
    assert search == "/contacts/search/duplicate"
    assert sorted(reads) == [f"/contacts/{contact}", f"/contacts/{contact}/notes"]


def test_lookup_contact_unknown(crm, api_app):
    assert run(api_app, "lookup_contact", {"phone": OTHER}) == {
        "result": "No contact found for that number."}
    assert run(api_app, "lookup_contact", {"email": "x@example.com"}, "t2") == {
        "result": "No contact found for that email."}
    assert [r.path for r in crm.requests] == ["/contacts/search/duplicate"] * 2


def test_lookup_contact_needs_the_api(crm, workflow_app):
    assert run(workflow_app, "lookup_contact", {}) == {
        "error": "Looking up contacts is not set up for this line."}
    both = create_app(workflow_env(crm) | {"GHL_API_KEY": TOKEN, "GHL_LOCATION_ID": LOCATION})
    assert run(both, "lookup_contact", {}) == {"result": "No contact found for that number."}


@pytest.mark.parametrize("name", ["send_sms", "upsert_contact", "add_tag", "add_note",
                                  "update_stage"])
def test_without_a_crm_the_tools_say_so(name):
    app = create_app({})
    assert run(app, name, {"tag": "x", "note": "x", "body": "x", "pipelineId": "p",
                           "stageId": "s"}) == {"error": "The CRM is not set up for this line."}


# Arguments
@pytest.mark.parametrize(("name", "arguments", "customer", "error"), [
    ("add_tag", {"phone": OTHER}, CALLER, "I need the tag (tag) to add a tag."),
    ("add_tag", {"tag": "  "}, CALLER, "I need the tag (tag) to add a tag."),
    ("add_note", {"email": "a@b.co"}, CALLER, "I need the note text (note) to add a note."),
    ("send_sms", {"phone": OTHER}, CALLER,
     "I need the message text (body) to send a text message."),
    ("send_sms", {"body": "hi"}, None, "I need the phone number (phone) to send a text message."),
    ("update_stage", {"stageId": "s"}, CALLER,
     "I need the pipeline id (pipelineId) to update the pipeline stage."),
    ("update_stage", {"pipelineId": "p"}, CALLER,
     "I need the stage id (stageId) to update the pipeline stage."),
    ("add_tag", {"tag": "vip"}, None,
     "I need the caller's phone number or email (phone or email) to add a tag."),
    ("add_tag", {"tag": "vip"}, "sip:someone@example.com",
     "I need the caller's phone number or email (phone or email) to add a tag."),
    ("upsert_contact", {"firstName": "Ana"}, None,
     "I need the caller's phone number or email (phone or email) to save the contact."),
    ("lookup_contact", {}, None,
     "I need the caller's phone number or email (phone or email) to look up the contact."),
    ("add_tag", {"tag": ["a", "b"]}, CALLER, "The tag must be text."),
    ("add_tag", {"tag": "vip", "email": "not-an-email"}, CALLER,
     "That email address does not look right. Please check it."),
    ("add_tag", {"tag": "vip", "phone": "the caller"}, CALLER,
     "That phone number does not look right. Please check it."),
    ("add_tag", {"tag": "vip", "phone": "12345"}, CALLER,
     "That phone number does not look right. Please check it."),
    ("send_sms", {"body": "hi", "template": "reminder"}, CALLER,
     "The template must be booking or deposit, or left out."),
])
@pytest.mark.parametrize("mode", ["api", "workflow"])
def test_bad_arguments_name_the_field(crm, mode, name, arguments, customer, error):
    app = create_app(api_env(crm) | (workflow_env(crm) if mode == "workflow" else {}))
    assert run(app, name, arguments, customer=customer) == {"error": error}
    assert crm.requests == []


def test_numbers_are_read_as_text(crm, workflow_app):
    run(workflow_app, "add_tag", {"tag": 2026, "phone": 14155559876.0})
    assert hooked(crm) == [("default", {"phone": "+14155559876", "tag": "2026",
                                        "action": "add_tag"})]


# GoHighLevel failures, repeats
def test_a_refusal_is_stored_and_a_repeat_asks_nobody(crm, api_app):
    crm.fail_next(1, 422)
    refused = {"error": "The CRM refused that request (422)."}
    assert run(api_app, "add_tag", {"tag": "vip"}) == refused
    assert run(api_app, "add_tag", {"tag": "vip"}) == refused
    assert len(crm.requests) == 1


def test_an_outage_after_retries_lets_the_repeat_try_again(crm, api_app):
    crm.add_contact(CALLER, LOCATION)
    crm.fail_next(4, 503)  # the first try and GhlClient's 3 retries
    assert run(api_app, "add_note", {"note": "x"}) == {"error": NOT_ANSWERING}
    assert len(crm.requests) == 4
    assert run(api_app, "add_note", {"note": "x"}) == {"result": "The note is added."}
    assert len(crm.requests) == 6 and len(crm.notes) == 1


API_CASES = [
    ("send_sms", {"body": "hi"}), ("upsert_contact", {"name": "Ana"}),
    ("add_tag", {"tag": "vip"}), ("add_note", {"note": "hello"}),
    ("update_stage", {"pipelineId": "p1", "stageId": "s1", "note": "n"}),
    ("lookup_contact", {}),
]


@pytest.mark.parametrize(("name", "arguments"), API_CASES, ids=[case[0] for case in API_CASES])
def test_a_repeated_delivery_makes_no_request_and_gets_the_same_answer(crm, api_app, name,
                                                                         arguments):
    crm.add_contact(CALLER, LOCATION, firstName="Ana")
    first = run(api_app, name, arguments)
    assert "result" in first
    count = len(crm.requests)
    assert run(api_app, name, arguments) == first
    assert len(crm.requests) == count


def test_a_slow_crm_answers_by_the_deadline_and_the_repeat_gets_the_late_answer(crm):
    app = create_app(workflow_env(crm) | {"TOOL_DEADLINE_SECONDS": "0.3"})
    crm.delay = 0.6
    assert run(app, "add_tag", {"tag": "vip"}) == {"error": tools.TOO_SLOW}
    deadline = time.monotonic() + 5
    while not crm.hooks and time.monotonic() < deadline:
        time.sleep(0.05)
    # Stored a moment after the workflow answered; meanwhile a repeat waits for it.
    assert run(app, "add_tag", {"tag": "vip"}) == {"result": "The tag was sent to the CRM."}
    assert len(crm.requests) == 1


def test_three_calls_in_one_message_are_answered_in_order(crm, api_app):
    contact = crm.add_contact(CALLER, LOCATION, tags=["vip"])
    answers = post(api_app, message(
        item("t1", "lookup_contact", {}),
        item("t2", "add_tag", {"tag": "booked"}),
        item("t3", "add_note", {}),
    ))
    assert [(a["toolCallId"], a["name"]) for a in answers] == [
        ("t1", "lookup_contact"), ("t2", "add_tag"), ("t3", "add_note")]
    assert json.loads(answers[0]["result"])["tags"] == ["vip"]
    assert answers[1]["result"] == "The tag is added."
    assert answers[2]["error"] == "I need the note text (note) to add a note."
    assert crm.tags == [{"contact_id": contact, "tags": ["booked"], "token": TOKEN}]


# Each shape Vapi sends
@pytest.mark.parametrize("shape", ["object", "json-string", "top-level", "legacy-toolCalls"])
def test_each_tool_call_shape(crm, workflow_app, shape):
    arguments = {"tag": "vip", "phone": OTHER}
    if shape == "object":
        payload = message(item("t1", "add_tag", arguments))
    elif shape == "json-string":
        payload = message(item("t1", "add_tag", json.dumps(arguments)))
    elif shape == "top-level":  # the docs' variant
        payload = message({"id": "t1", "name": "add_tag", "arguments": arguments})
    else:
        payload = message({"id": "t1", "name": "add_tag", "parameters": arguments},
                          key="toolCalls")
    assert post(workflow_app, payload) == [
        {"toolCallId": "t1", "name": "add_tag", "result": "The tag was sent to the CRM."}]
    assert hooked(crm) == [("default", {"phone": OTHER, "tag": "vip", "action": "add_tag"})]


def test_legacy_function_call(crm, workflow_app):
    payload = {"message": {"type": "function-call", "call": {"id": "c1"},
                           "customer": {"number": CALLER},
                           "functionCall": {"name": "add_note", "parameters": {"note": "hi"}}}}
    response = workflow_app.test_client().post("/vapi/webhook", json=payload,
                                               headers=WEBHOOK_AUTH)
    assert response.get_json() == {"result": "The note was sent to the CRM."}
    assert hooked(crm) == [("default", {"phone": CALLER, "note": "hi", "action": "add_note"})]


# Privacy
def test_phones_emails_and_texts_never_reach_the_log(crm, caplog):
    caplog.set_level(logging.DEBUG, logger="vapi_bridge")
    secrets = {"phone": "+14155557777", "email": "hidden.lead@example.com",
               "body": "Your code is 424242", "note": "Private remark", "name": "Zelda Quux",
               "tag": "secret-tag"}
    arguments = {**secrets, "pipelineId": "p1", "stageId": "s1"}
    names = ["send_sms", "upsert_contact", "add_tag", "add_note", "update_stage",
             "lookup_contact"]
    for app in (create_app(api_env(crm)), create_app(api_env(crm) | workflow_env(crm))):
        for n, name in enumerate(names):
            run(app, name, arguments, tool_call_id=f"ok{n}")
            crm.fail_next(1, 422)
            run(app, name, arguments, tool_call_id=f"refused{n}")
            run(app, name, {**arguments, "email": "bad@"}, tool_call_id=f"bad{n}")
    run(create_app({"GHL_INCOMING_WEBHOOK_URL_DEFAULT": "http://127.0.0.1:1/hooks/x",
                    "WEBHOOK_TOKEN": WEBHOOK_TOKEN}), "add_tag", arguments)
    records = [r for r in caplog.records if r.name.startswith("vapi_bridge")]
    assert any(r.name == "vapi_bridge.tools.crm" for r in records)
    assert any("refused" in r.getMessage() or "422" in r.getMessage() for r in records)
    text = "\n".join(r.getMessage() + " " + repr(r.args) for r in records)
    for secret in [*secrets.values(), CALLER, "bad@", "/hooks/", crm.url]:
        assert secret not in text


# What the spec shows (issue 13)
def sent_messages(crm):
    return [r.get_json() for r in crm.requests if r.path == "/conversations/messages"]


def test_send_sms_sends_type_contact_id_and_message_only(crm, api_app):
    """SendMessageBodyDto's 2026-05 "subType" and "status" are left out on purpose (crm.py)."""
    contact = crm.add_contact(CALLER, LOCATION)
    assert run(api_app, "send_sms", {"body": "See you Tuesday"}) == {
        "result": "The text message was sent."}
    assert sent_messages(crm) == [
        {"type": "SMS", "contactId": contact, "message": "See you Tuesday"}]


GHL_REFUSALS = [
    (400, {"statusCode": 400, "message": "Cannot send SMS to +14155550123: contact has DND"}),
    (422, {"statusCode": 422, "message": ["subType must be an object",
                                          "status must be one of delivered, failed"],
           "error": "Unprocessable Entity"}),
]


@pytest.mark.parametrize(("status", "answer"), GHL_REFUSALS, ids=["400", "422"])
def test_send_sms_refused_by_ghl_says_so_and_logs_why(crm, api_app, caplog, status, answer):
    caplog.set_level(logging.INFO, logger="vapi_bridge")
    crm.add_contact(CALLER, LOCATION)
    crm.message_refusal = (status, answer)
    said = {"error": "The text message was not sent: the CRM refused it."}
    assert run(api_app, "send_sms", {"body": "Your code is 424242"}) == said
    [line] = [r.getMessage() for r in caplog.records if "refused by GoHighLevel" in r.getMessage()]
    assert f"HTTP {status}" in line
    reason = answer["message"] if status == 422 else ["Cannot send SMS to ***0123"]
    assert all(part in line for part in reason)  # GoHighLevel's words, the number cut
    for secret in (CALLER, TOKEN, "424242"):
        assert secret not in line
    assert len(sent_messages(crm)) == 1
    assert run(api_app, "send_sms", {"body": "Your code is 424242"}) == said  # stored
    assert len(sent_messages(crm)) == 1


# Phone numbers: E.164 only, read with the client's default country
def phones_sent(crm):
    """Every phone that reached the fake: the duplicate search's number, upserts' phone."""
    return [r.args.get("number") if r.method == "GET" else r.get_json().get("phone")
            for r in crm.requests
            if r.path in ("/contacts/search/duplicate", "/contacts/upsert")]


PHONE_CASES = [
    ("lookup_contact", {}), ("add_tag", {"tag": "vip"}), ("add_note", {"note": "hi"}),
    ("upsert_contact", {"firstName": "Ana"}), ("send_sms", {"body": "hi"}),
    ("update_stage", {"pipelineId": "p1", "stageId": "s1"}),
]


@pytest.mark.parametrize(("name", "arguments"), PHONE_CASES, ids=[c[0] for c in PHONE_CASES])
def test_phone_arguments_reach_ghl_in_e164(crm, api_app, name, arguments):
    run(api_app, name, {**arguments, "phone": "(415) 555-0199"})
    assert phones_sent(crm) and set(phones_sent(crm)) == {"+14155550199"}


def test_phones_are_read_with_the_clients_default_country(crm):
    app = create_app(api_env(crm, DEFAULT_COUNTRY="GB"))
    assert run(app, "add_tag", {"tag": "vip", "phone": "020 7946 0018"}) == {
        "result": "The tag is added."}
    assert phones_sent(crm) == ["+442079460018", "+442079460018"]


def test_workflows_get_e164_phones_too(crm, workflow_app):
    run(workflow_app, "send_sms", {"phone": "415.555.0199", "body": "hi"})
    assert hooked(crm)[0][1]["phone"] == "+14155550199"


@pytest.mark.parametrize("phone", ["555-0199", "(415) 555-01", "+1 415 555 0199 99"])
@pytest.mark.parametrize("name", ["send_sms", "upsert_contact", "add_tag", "lookup_contact"])
def test_a_phone_that_cannot_be_read_is_said_and_nothing_is_sent(crm, api_app, name, phone):
    answer = run(api_app, name, {"phone": phone, "tag": "vip", "body": "hi"})
    assert answer == {"error": "That phone number does not look right. Please check it."}
    assert crm.requests == []


# update_stage: asked for explicitly, every page, the same choice in any order
@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_update_stage_moves_the_open_one_whatever_the_order(crm, api_app, order):
    crm.opportunity_order = order
    contact = crm.add_contact(CALLER, LOCATION)
    crm.add_opportunity(contact, "p1", "s1", status="lost", updated_minutes=500)
    crm.add_opportunity(contact, "p1", "s1", status="open", updated_minutes=10)
    crm.add_opportunity(contact, "p1", "s1", status="won", updated_minutes=900)
    assert run(api_app, "update_stage", {"pipelineId": "p1", "stageId": "s2"}) == {
        "result": "The opportunity was moved to that stage."}
    assert seen(crm)[1:] == [search(contact),
                             api("PUT", "/opportunities/opp-2", {"pipelineStageId": "s2"})]


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_update_stage_without_an_open_one_moves_the_latest_updated(crm, api_app, order):
    crm.opportunity_order = order
    contact = crm.add_contact(CALLER, LOCATION)
    crm.add_opportunity(contact, "p1", "s1", status="lost", updated_minutes=100)
    crm.add_opportunity(contact, "p1", "s1", status="won", updated_minutes=900)  # this one
    crm.add_opportunity(contact, "p1", "s1", status="abandoned", updated_minutes=300)
    assert run(api_app, "update_stage", {"pipelineId": "p1", "stageId": "s2"}) == {
        "result": "The opportunity was moved to that stage."}
    assert seen(crm)[-1] == api("PUT", "/opportunities/opp-2", {"pipelineStageId": "s2"})


def test_update_stage_reads_every_page(crm, api_app):
    contact = crm.add_contact(CALLER, LOCATION)
    crm.add_opportunity(contact, "p1", "s1", status="open", updated_minutes=1)  # oldest: page 2
    for _ in range(120):
        crm.add_opportunity(contact, "p1", "s1", status="lost")
    assert run(api_app, "update_stage", {"pipelineId": "p1", "stageId": "s2"}) == {
        "result": "The opportunity was moved to that stage."}
    # Newest first, 100 a page: opp-121 down to opp-22, then opp-21 down to opp-1.
    cursor = (str(epoch_ms(crm.opportunities["opp-22"]["createdAt"])), "opp-22")
    assert seen(crm)[1:] == [search(contact), search(contact, after=cursor),
                             api("PUT", "/opportunities/opp-1", {"pipelineStageId": "s2"})]
