"""One client never reaches another's call: ownership, tool answers per client, call context.

All clients share the agency's webhook secret here (the client is chosen by assistant), on a
real Redis, with the GoHighLevel, Slack and Vapi fakes reached over sockets.
"""

from __future__ import annotations

import copy
import json
import logging

import pytest

from tests.vapi.payloads import EOCR_CURRENT
from vapi_bridge import create_app

TOKEN = "agency-token"
PHONE = "+14155550123"  # the caller in EOCR_CURRENT (Ana Núñez)
CLIENTS = [
    {"name": "North Dental", "assistant_ids": ["asst-north"], "ghl_api_key": "pit-north",
     "ghl_location_id": "loc-north", "slack_channel_id": "C-north",
     "vapi_assistant_id": "asst-north", "vapi_phone_number_id": "pn-north"},
    {"name": "South", "assistant_ids": ["asst-south"], "ghl_api_key": "pit-south",
     "ghl_location_id": "loc-south", "slack_channel_id": "C-south"},
]
REFUSED = {"error": "call_belongs_to_another_client"}


@pytest.fixture
def app(integrations_env, redis_url, prefix):
    return create_app({**integrations_env, "REDIS_URL": redis_url, "STATE_STORAGE_PREFIX": prefix,
                       "WEBHOOK_TOKEN": TOKEN, "CLIENTS_JSON": json.dumps(CLIENTS)})


def post(app, payload, path="/vapi/webhook"):
    return app.test_client().post(path, json=payload,
                                  headers={"Authorization": f"Bearer {TOKEN}"})


def report(call_id, assistant_id, contact_id, summary="Booked a cleaning on Tuesday."):
    payload = copy.deepcopy(EOCR_CURRENT)
    message = payload["message"]
    message["call"].update(id=call_id, assistantId=assistant_id, phoneNumberId=None)
    message["call"]["assistantOverrides"]["variableValues"]["ghlContactId"] = contact_id
    message["analysis"]["summary"] = summary
    return payload


def tool_calls(call_id, assistant_id, *calls, kind="tool-calls"):
    call = {"id": call_id, "assistantId": assistant_id, "customer": {"number": PHONE}}
    if kind == "function-call":
        [(_, name, arguments)] = calls
        return {"message": {"type": "function-call", "call": call,
                            "functionCall": {"name": name, "parameters": arguments}}}
    return {"message": {"type": "tool-calls", "call": call, "toolCallList": [
        {"id": tool_call_id, "type": "function",
         "function": {"name": name, "arguments": arguments}}
        for tool_call_id, name, arguments in calls]}}


def stored(app, call_id):
    state = app.extensions["state_storage"]
    return state.get_call_summary(call_id), state.get_metadata(call_id), state.recent_calls()


def owner(app, call_id):
    state = app.extensions["state_storage"]
    return state.backend.get(state.key("owner", call_id))


# Reports
def test_a_report_for_another_clients_call_is_refused_and_changes_nothing(app, ghl, slack,
                                                                          caplog):
    caplog.set_level(logging.INFO)
    assert post(app, report("call-1", "asst-north", "north-contact")).status_code == 200
    [note] = ghl.notes
    assert (note["contact_id"], note["token"]) == ("north-contact", "pit-north")
    assert [m["channel"] for m in slack.messages] == ["C-north"]
    before, requests = stored(app, "call-1"), len(ghl.requests)

    response = post(app, report("call-1", "asst-south", "south-contact", summary="Overwritten."))

    assert (response.status_code, response.get_json()) == (409, REFUSED)
    assert stored(app, "call-1") == before  # summary, metadata, recent calls
    assert owner(app, "call-1") == "North Dental"
    assert len(ghl.requests) == requests and len(ghl.notes) == 1  # no note for South
    assert [m["channel"] for m in slack.messages] == ["C-north"]  # no Slack for South
    [line] = [r.getMessage() for r in caplog.records if "belongs to client" in r.getMessage()]
    assert "type=end-of-call-report callId=call-1 client=South" in line
    assert "North Dental" in line
    logged = caplog.text
    for secret in (PHONE, "4155550123", TOKEN, "pit-north", "pit-south", "xoxb-default",
                   "Overwritten."):
        assert secret not in logged


def test_the_same_client_reporting_again_is_accepted(app, ghl, slack):
    assert post(app, report("call-1", "asst-north", "north-contact")).status_code == 200
    again = post(app, report("call-1", "asst-north", "north-contact", summary="Retried."))
    assert (again.status_code, again.get_json()) == (200, {"status": "received"})
    assert app.extensions["state_storage"].get_call_summary("call-1") == "Retried."
    assert len(ghl.notes) == 1 and len(slack.messages) == 1  # the claims, as before


def test_a_report_for_a_call_another_client_started_is_refused(app, ghl, slack, vapi_api):
    started = post(app, {"contact_id": "north-contact", "phone": PHONE,
                         "location": {"id": "loc-north"}}, path="/ghl/outbound-call")
    assert started.status_code == 201
    call_id = started.get_json()["callId"]
    response = post(app, report(call_id, "asst-south", "south-contact"))
    assert (response.status_code, response.get_json()) == (409, REFUSED)
    assert owner(app, call_id) == "North Dental"
    assert app.extensions["state_storage"].get_metadata(call_id) is None
    assert ghl.requests == [] and slack.messages == []
    assert post(app, report(call_id, "asst-north", "north-contact")).status_code == 200
    assert [n["token"] for n in ghl.notes] == ["pit-north"]


# Tool calls
@pytest.mark.parametrize("kind", ["tool-calls", "function-call"])
def test_a_tool_call_for_another_clients_call_is_refused(app, ghl, slack, kind):
    assert post(app, report("call-1", "asst-north", "north-contact")).status_code == 200
    requests = len(ghl.requests)
    response = post(app, tool_calls("call-1", "asst-south", ("t1", "add_note", {"note": "x"}),
                                    kind=kind))
    assert (response.status_code, response.get_json()) == (409, REFUSED)
    assert len(ghl.requests) == requests  # the tool never ran
    assert owner(app, "call-1") == "North Dental"


def test_a_report_for_a_call_whose_tools_another_client_ran_is_refused(app, ghl):
    answer = post(app, tool_calls("call-1", "asst-south", ("t1", "add_note", {"note": "x"})))
    assert answer.status_code == 200
    response = post(app, report("call-1", "asst-north", "north-contact"))
    assert (response.status_code, response.get_json()) == (409, REFUSED)
    assert app.extensions["state_storage"].get_metadata("call-1") is None
    assert [n["token"] for n in ghl.notes] == ["pit-south"]  # the tool's note only


def test_the_same_tool_call_id_from_two_clients_runs_for_each(app, ghl):
    north, south = ghl.add_contact(PHONE, "loc-north"), ghl.add_contact(PHONE, "loc-south")
    for call_id, assistant, note in (("call-n", "asst-north", "North's note"),
                                     ("call-s", "asst-south", "South's note")):
        response = post(app, tool_calls(call_id, assistant, ("t1", "add_note", {"note": note})))
        assert response.get_json()["results"] == [
            {"toolCallId": "t1", "name": "add_note", "result": "The note is added."}]
    notes = [(r.path, r.headers["Authorization"], r.get_json()["body"])
             for r in ghl.requests if r.path.endswith("/notes")]
    assert notes == [(f"/contacts/{north}/notes", "Bearer pit-north", "North's note"),
                     (f"/contacts/{south}/notes", "Bearer pit-south", "South's note")]
    # A repeat from either client still gets its own first answer, without a new request.
    again = post(app, tool_calls("call-s", "asst-south", ("t1", "add_note", {"note": "x"})))
    assert again.get_json()["results"][0]["result"] == "The note is added."
    assert len([r for r in ghl.requests if r.path.endswith("/notes")]) == 2


# get_call_context
def test_get_call_context_answers_only_about_the_current_call(app, ghl, slack):
    assert post(app, report("call-a", "asst-north", "north-contact")).status_code == 200
    for call_id, assistant in (("call-b", "asst-south"), ("call-x", "asst-north")):
        response = post(app, tool_calls(call_id, assistant,
                                        ("t1", "get_call_context", {"callId": "call-a"})))
        assert response.get_json()["results"] == [
            {"toolCallId": "t1", "name": "get_call_context",
             "error": "I can only look up the current call."}]
        text = response.get_data(as_text=True)
        for secret in ("Booked a cleaning", "Ana", "N\\u00fa\\u00f1ez", "Núñez", "4155550123",
                       "north-contact"):
            assert secret not in text
    # Its own call, named or not: answered.
    own = post(app, tool_calls("call-b", "asst-south", ("t2", "get_call_context",
                                                        {"callId": "call-b"})))
    assert json.loads(own.get_json()["results"][0]["result"]) == {"callId": "call-b",
                                                                  "known": False}


# A client named only by the assistant and number it starts calls with
def test_a_call_started_with_a_clients_outbound_assistant_stays_that_clients(
        integrations_env, redis_url, prefix, ghl, slack, vapi_api):
    west = {"name": "West", "ghl_api_key": "pit-west", "ghl_location_id": "loc-west",
            "slack_channel_id": "C-west", "vapi_assistant_id": "asst-west",
            "vapi_phone_number_id": "pn-west"}  # no assistant_ids: only what it calls with
    app = create_app({**integrations_env, "REDIS_URL": redis_url, "STATE_STORAGE_PREFIX": prefix,
                      "WEBHOOK_TOKEN": TOKEN, "CLIENTS_JSON": json.dumps([*CLIENTS, west])})
    started = post(app, {"contact_id": "west-contact", "phone": PHONE,
                         "location": {"id": "loc-west"}}, path="/ghl/outbound-call")
    call_id = started.get_json()["callId"]
    assert vapi_api.created[0]["assistantId"] == "asst-west"
    answer = post(app, tool_calls(call_id, "asst-west", ("t1", "add_note", {"note": "x"})))
    assert answer.status_code == 200  # was 409: the default client, not the call's owner
    assert post(app, report(call_id, "asst-west", "west-contact")).status_code == 200
    assert {n["token"] for n in ghl.notes} == {"pit-west"}
    assert [m["channel"] for m in slack.messages] == ["C-west"]
    assert owner(app, call_id) == "West"


def test_an_outbound_assistant_shared_by_two_clients_names_neither():
    from vapi_bridge.clients import Client, ClientDirectory

    one, two = (Client(name, vapi_assistant_id="asst-shared") for name in ("One", "Two"))
    listed = Client("Three", assistant_ids=("asst-shared",))
    default = Client("default")
    assert ClientDirectory([one, two], default).resolve("asst-shared") is default
    assert ClientDirectory([one, two, listed], default).resolve("asst-shared") is listed
    assert ClientDirectory([one], default).resolve("asst-shared") is one
