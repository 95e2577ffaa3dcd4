"""The caller's contact, resolved once per call (issue 15): what GoHighLevel is asked, read
from the fake's request log over sockets."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tests.conftest import WEBHOOK_TOKEN
from tests.tools.test_crm import (
    AUTH,
    CALLER,
    LOCATION,
    OTHER,
    api,
    api_env,
    duplicate,
    item,
    message,
    no_ambient_crm_settings,  # noqa: F401  (autouse here too)
    post,
    run,
    search,
    seen,
)
from vapi_bridge import create_app, tools
from vapi_bridge.context import current_context
from vapi_bridge.vapi.messages import ToolCall

# A later tool of the call, and exactly the requests it makes on its own.
LATER = [
    ("add_note", {"note": "Wants mornings"},
     lambda c: [api("POST", f"/contacts/{c}/notes", {"body": "Wants mornings"})]),
    ("add_tag", {"tag": "booked"}, lambda c: [api("POST", f"/contacts/{c}/tags",
                                                  {"tags": ["booked"]})]),
    ("send_sms", {"body": "See you"}, lambda c: [api(
        "POST", "/conversations/messages", {"type": "SMS", "contactId": c, "message": "See you"},
        version="2021-04-15")]),
    ("update_stage", {"pipelineId": "p1", "stageId": "s1"}, lambda c: [
        search(c), api("PUT", "/opportunities/opp-1", {"pipelineStageId": "s1"})]),
    ("lookup_contact", {}, lambda c: sorted([api("GET", f"/contacts/{c}"),
                                             api("GET", f"/contacts/{c}/notes")])),
]


@pytest.fixture
def api_app(crm):
    return create_app(api_env(crm))


def tool_call(app, name, arguments, tool_call_id, **call):
    """One tool call with more fields in the message's ``call``; its answer."""
    payload = message(item(tool_call_id, name, arguments))
    payload["message"]["call"].update(call)
    [answer] = post(app, payload)
    return answer


@pytest.mark.parametrize(("name", "arguments", "own"), LATER, ids=[case[0] for case in LATER])
def test_a_later_tool_of_the_call_makes_only_its_own_requests(crm, api_app, name, arguments,
                                                              own):
    contact = crm.add_contact(CALLER, LOCATION, firstName="Ana")
    crm.add_opportunity(contact, "p1", "s0")
    assert run(api_app, "add_tag", {"tag": "vip"}) == {"result": "The tag is added."}
    assert seen(crm)[0] == duplicate()  # the first tool of the call searched
    crm.requests.clear()
    answer = run(api_app, name, arguments, tool_call_id="t2")
    assert "result" in answer, answer
    requests = seen(crm)
    assert (sorted(requests) if name == "lookup_contact" else requests) == own(contact)


def test_lookup_contact_reads_a_kept_contact_and_its_notes_at_once(crm, api_app):
    contact = crm.add_contact(CALLER, LOCATION, firstName="Ana", tags=["vip"])
    run(api_app, "add_tag", {"tag": "vip"})
    crm.delay = 0.3  # each read held long enough to overlap if both are asked at once
    answer = json.loads(run(api_app, "lookup_contact", {}, tool_call_id="t2")["result"])
    assert (answer["name"], answer["tags"]) == ("Ana", ["vip"])
    assert sorted(r.path for r in crm.requests[2:]) == [f"/contacts/{contact}",
                                                        f"/contacts/{contact}/notes"]
    assert crm.most_in_flight == 2


def test_a_phone_argument_naming_someone_else_searches(crm, api_app):
    caller = crm.add_contact(CALLER, LOCATION)
    other = crm.add_contact(OTHER, LOCATION)
    run(api_app, "add_tag", {"tag": "vip"})
    crm.requests.clear()
    assert run(api_app, "add_note", {"note": "x", "phone": OTHER}, tool_call_id="t2") == {
        "result": "The note is added."}
    assert seen(crm) == [duplicate(OTHER), api("POST", f"/contacts/{other}/notes", {"body": "x"})]
    crm.requests.clear()
    # The caller's kept contact is still the caller's; the caller's number written any way is too.
    run(api_app, "add_note", {"note": "y", "phone": "(415) 555-0123"}, tool_call_id="t3")
    run(api_app, "add_note", {"note": "z", "email": "ana@example.com"}, tool_call_id="t4")
    assert seen(crm) == [
        api("POST", f"/contacts/{caller}/notes", {"body": "y"}),
        ("GET", "/contacts/search/duplicate", {"locationId": LOCATION, "email": "ana@example.com"},
         "2021-07-28", AUTH, None),  # an email alone may name anyone: searched
        api("POST", "/contacts/upsert", {"email": "ana@example.com", "locationId": LOCATION}),
        api("POST", "/contacts/contact-3/notes", {"body": "z"})]


def test_the_contact_a_call_names_is_used_without_a_search(crm, api_app):
    contact = crm.add_contact(CALLER, LOCATION, firstName="Ana")
    overrides = {"variableValues": {"ghlContactId": contact}}
    answer = tool_call(api_app, "add_note", {"note": "x"}, "t1", assistantOverrides=overrides)
    assert answer["result"] == "The note is added."
    assert seen(crm) == [api("POST", f"/contacts/{contact}/notes", {"body": "x"})]


def test_the_outbound_calls_record_is_used_without_a_search(crm, api_app):
    contact = crm.add_contact(CALLER, LOCATION)
    state = api_app.extensions["state_storage"]
    state.remember_call_contact("c1", {"contactId": contact, "client": "default",
                                       "locationId": LOCATION})
    assert run(api_app, "add_note", {"note": "x"}) == {"result": "The note is added."}
    assert seen(crm) == [api("POST", f"/contacts/{contact}/notes", {"body": "x"})]


@pytest.mark.parametrize("record", [
    {"contactId": "their-contact", "client": "someone-else", "locationId": LOCATION},
    {"contactId": "their-contact", "client": "default", "locationId": "loc-elsewhere"},
    {"contactId": "../contacts", "client": "default", "locationId": LOCATION},
])
def test_an_outbound_record_of_another_client_or_location_is_not_used(crm, api_app, record):
    contact = crm.add_contact(CALLER, LOCATION)
    api_app.extensions["state_storage"].remember_call_contact("c1", record)
    assert run(api_app, "add_note", {"note": "x"}) == {"result": "The note is added."}
    assert seen(crm) == [duplicate(), api("POST", f"/contacts/{contact}/notes", {"body": "x"})]


# 400 "Contact with id ... not found" (reference A3); 403: a location the token cannot reach.
@pytest.mark.parametrize("status", [404, 400, 403])
def test_a_kept_contact_gone_since_is_dropped_and_searched_again(crm, api_app, status):
    old = crm.add_contact(CALLER, LOCATION)
    run(api_app, "add_tag", {"tag": "vip"})
    crm.remove_contact(old, status)  # merged away during the call
    new = crm.add_contact(CALLER, LOCATION)
    crm.requests.clear()
    assert run(api_app, "add_note", {"note": "x"}, tool_call_id="t2") == {
        "result": "The note is added."}
    assert seen(crm) == [api("POST", f"/contacts/{old}/notes", {"body": "x"}), duplicate(),
                         api("POST", f"/contacts/{new}/notes", {"body": "x"})]
    crm.requests.clear()
    run(api_app, "add_note", {"note": "y"}, tool_call_id="t3")
    assert seen(crm) == [api("POST", f"/contacts/{new}/notes", {"body": "y"})]


def test_a_contact_the_call_names_in_another_location_is_never_read_out(crm, api_app):
    theirs = crm.add_contact(CALLER, "loc-elsewhere", firstName="Zelda")
    ours = crm.add_contact(CALLER, LOCATION, firstName="Ana", tags=["vip"])
    answer = tool_call(api_app, "lookup_contact", {}, "t1",
                       metadata={"ghlContactId": theirs})
    assert json.loads(answer["result"])["name"] == "Ana"
    assert [r.path for r in crm.requests][-2:] == ["/contacts/search/duplicate",
                                                   f"/contacts/{ours}/notes"]


def test_update_stage_on_a_kept_contact_names_the_new_opportunity_after_it(crm, api_app):
    contact = crm.add_contact(CALLER, LOCATION, firstName="Ana", lastName="Núñez")
    answer = tool_call(api_app, "update_stage", {"pipelineId": "p1", "stageId": "s1"}, "t1",
                       metadata={"contactId": contact})
    assert answer["result"] == "A new opportunity was created in that stage."
    assert seen(crm) == [search(contact), api("GET", f"/contacts/{contact}"), api(
        "POST", "/opportunities/", {"pipelineId": "p1", "locationId": LOCATION,
                                    "name": "Ana Núñez", "status": "open", "contactId": contact,
                                    "pipelineStageId": "s1"})]


CLIENTS = [{"name": "North", "assistant_ids": ["a1"], "ghl_api_key": "pit-north",
            "ghl_location_id": "loc-north"},
           {"name": "South", "assistant_ids": ["a2"], "ghl_api_key": "pit-south",
            "ghl_location_id": "loc-south"}]


def test_two_clients_with_the_same_call_id_never_share_a_kept_contact(crm, redis_url, prefix):
    app = create_app({"GHL_API_BASE_URL": crm.url, "WEBHOOK_TOKEN": WEBHOOK_TOKEN,
                      "REDIS_URL": redis_url, "STATE_STORAGE_PREFIX": prefix,
                      "CLIENTS_JSON": json.dumps(CLIENTS)})
    north = crm.add_contact(CALLER, "loc-north")
    south = crm.add_contact(CALLER, "loc-south")
    assert run(app, "add_note", {"note": "x"}) == {"result": "The note is added."}  # North's
    # The webhook refuses South a call North owns; even were it let through, South's tool
    # finds South's own contact, not North's kept one.
    with app.app_context():
        ctx = dataclasses.replace(current_context(), call_id="c1", customer_number=CALLER,
                                  client=app.config["SETTINGS"].clients.by_name("South"))
        answer = tools.run(ToolCall("t9", "add_note", {"note": "y"}), ctx)
    assert answer == {"result": "The note is added."}
    assert [(n["contact_id"], n["token"]) for n in crm.notes] == [(north, "pit-north"),
                                                                  (south, "pit-south")]
    assert [(r.path, r.args.get("locationId")) for r in crm.requests
            if r.path == "/contacts/search/duplicate"] == [
        ("/contacts/search/duplicate", "loc-north"), ("/contacts/search/duplicate", "loc-south")]


def test_another_call_of_the_same_caller_searches_again(crm):
    contact = crm.add_contact(CALLER, LOCATION)
    app = create_app(api_env(crm))
    run(app, "add_tag", {"tag": "vip"})
    tool_call(app, "add_tag", {"tag": "vip"}, "t2", id="c2")
    assert seen(crm) == [duplicate(), api("POST", f"/contacts/{contact}/tags", {"tags": ["vip"]})
                         ] * 2
