"""Per-client webhook secrets: a request let in by a client's own secret is that client's."""

from __future__ import annotations

import copy
import hmac
import json
import logging
import time

import pytest

from tests.vapi.payloads import EOCR_CURRENT, status_update, tool_calls
from vapi_bridge import create_app

AGENCY = "agency-token"
NORTH = {"name": "North", "assistant_ids": ["asst-n"], "phone_number_ids": ["pn-n"],
         "ghl_api_key": "pit-north", "ghl_location_id": "loc-north",
         "vapi_assistant_id": "asst-n", "vapi_phone_number_id": "pn-n",
         "webhook_token": "north-token"}
SOUTH = {"name": "South", "assistant_ids": ["asst-s"], "phone_number_ids": ["pn-s"],
         "ghl_api_key": "pit-south", "ghl_location_id": "loc-south",
         "hmac_secret_env": "SOUTH_HMAC"}
SOUTH_SECRET = "south-hmac-secret"
AS_NORTH = {"X-Vapi-Secret": "north-token"}
AS_AGENCY = {"Authorization": f"Bearer {AGENCY}"}
CLIENT_SECRETS_ONLY = {"WEBHOOK_TOKEN": None, "SOUTH_HMAC": SOUTH_SECRET,
                       "CLIENTS_JSON": json.dumps([NORTH, SOUTH])}


@pytest.fixture
def app(integrations_env):
    return create_app({**integrations_env, "WEBHOOK_TOKEN": AGENCY, "SOUTH_HMAC": SOUTH_SECRET,
                       "CLIENTS_JSON": json.dumps([NORTH, SOUTH])})


def report(call_id: str, assistant_id: str | None = None, phone_number_id: str | None = None,
           **message) -> dict:
    body = copy.deepcopy(EOCR_CURRENT)
    call = body["message"]["call"]
    call.update(id=call_id, assistantId=assistant_id, phoneNumberId=phone_number_id)
    body["message"].update(message)
    return body


def post(app, body: dict, headers: dict):
    return app.test_client().post("/vapi/webhook", json=body, headers=headers)


def as_south(body: dict) -> dict:
    raw = json.dumps(body).encode()
    timestamp = str(int(time.time()))
    signature = hmac.new(SOUTH_SECRET.encode(), timestamp.encode() + b"." + raw, "sha256")
    return {"data": raw, "headers": {"x-signature": signature.hexdigest(),
                                     "x-timestamp": timestamp}}


def stored(app, call_id: str):
    return app.extensions["state_storage"].get_metadata(call_id)


@pytest.mark.parametrize("names_south", [
    {"assistant_id": "asst-s"},
    {"phone_number_id": "pn-s"},
    {"assistant_id": "asst-n", "phone_number_id": "pn-s"},
    {"assistant": {"id": "asst-s"}},
    {"phoneNumber": {"id": "pn-s"}},
])
def test_a_clients_secret_naming_another_clients_call_is_403_and_stores_nothing(
        app, ghl, slack, caplog, names_south):
    caplog.set_level(logging.INFO)
    response = post(app, report("call-x", **names_south), AS_NORTH)
    assert response.status_code == 403
    assert response.get_json() == {"error": "wrong_client"}
    assert stored(app, "call-x") is None
    assert ghl.requests == [] and slack.messages == []
    assert "Wrong client /vapi/webhook" in caplog.text and "authenticated=North" in caplog.text
    assert "north-token" not in caplog.text


def test_other_message_types_for_another_client_are_refused_too(app):
    status = status_update("in-progress", "call-y")
    status["message"]["call"]["assistantId"] = "asst-s"
    assert post(app, status, AS_NORTH).status_code == 403
    assert app.extensions["state_storage"].get_status("call-y") is None
    tool = tool_calls({"id": "tc-1", "type": "function",
                       "function": {"name": "get_call_context", "arguments": {}}})
    tool["message"]["call"] = {"id": "call-y", "assistantId": "asst-s"}
    assert post(app, tool, AS_NORTH).get_json() == {"error": "wrong_client"}


@pytest.mark.parametrize("names", [
    {"call": {"id": "call-z", "assistantId": "asst-s"}},
    {"call": {"id": "call-z", "phoneNumberId": "pn-s"}},
    {"assistant": {"id": "asst-s", "model": {"messages": [{"role": "system"}]}}},
    {"phoneNumber": {"id": "pn-s", "number": "+15551230000"}},
])
def test_chatter_naming_another_clients_call_is_refused(app, names):
    """The quick read of chatter decodes only the type and these ids: enough to refuse."""
    chatter = {"message": {"type": "conversation-update", "messages": [{"role": "user"}],
                           **names}}
    assert post(app, chatter, AS_NORTH).get_json() == {"error": "wrong_client"}
    own = {"message": {**chatter["message"], "call": {"id": "call-z", "assistantId": "asst-n"},
                       "assistant": {"id": "asst-n"}, "phoneNumber": {"id": "pn-n"}}}
    assert post(app, own, AS_NORTH).get_json() == {"status": "ignored"}


@pytest.mark.parametrize("assistant_id", [None, "asst-unknown", "asst-n"])
def test_a_call_naming_no_other_client_belongs_to_the_secrets_client(app, ghl, assistant_id):
    response = post(app, report("call-n", assistant_id), AS_NORTH)
    assert response.status_code == 200
    assert stored(app, "call-n")["client"] == "North"
    assert {note["token"] for note in ghl.notes} == {"pit-north"}


def test_the_global_secret_still_picks_the_client_by_assistant(app, ghl):
    assert post(app, report("call-s", "asst-s"), AS_AGENCY).status_code == 200
    assert stored(app, "call-s")["client"] == "South"
    assert post(app, report("call-d", "asst-unknown"), AS_AGENCY).status_code == 200
    assert stored(app, "call-d")["client"] == "default"


def test_a_clients_hmac_secret_is_that_clients_only(app, ghl):
    client = app.test_client()
    wrong = client.post("/vapi/webhook", content_type="application/json",
                        **as_south(report("call-1", "asst-n")))
    assert (wrong.status_code, wrong.get_json()) == (403, {"error": "wrong_client"})
    assert stored(app, "call-1") is None
    for call_id, assistant_id in (("call-2", "asst-s"), ("call-3", None)):
        ok = client.post("/vapi/webhook", content_type="application/json",
                         **as_south(report(call_id, assistant_id)))
        assert ok.status_code == 200
        assert stored(app, call_id)["client"] == "South"
    assert {note["token"] for note in ghl.notes} == {"pit-south"}


def test_a_tool_call_runs_for_the_secrets_client(app):
    tool = tool_calls({"id": "tc-2", "type": "function",
                       "function": {"name": "get_call_context", "arguments": {}}})
    tool["message"]["call"] = {"id": "call-t", "assistantId": "asst-unknown"}
    answer = post(app, tool, AS_NORTH)
    assert answer.status_code == 200 and "results" in answer.get_json()


@pytest.mark.parametrize(("body", "status", "client"), [
    ({"locationId": "loc-south"}, 403, None),
    ({"location": {"id": "loc-south"}}, 403, None),
    ({"client": "South"}, 403, None),
    ({"client": "default"}, 403, None),
    ({"locationId": "loc-north", "client": "South"}, 403, None),
    ({"locationId": "loc-unknown"}, 403, None),
    ({}, 200, "North"),
    ({"locationId": "loc-north"}, 200, "North"),
])
def test_outbound_call_with_a_clients_secret_acts_for_that_client_only(
        app, vapi_api, body, status, client):
    payload = {"contact_id": "c-1", "phone": "+14155550100", **body}
    response = app.test_client().post("/ghl/outbound-call?dry_run=1", json=payload,
                                      headers=AS_NORTH)
    assert response.status_code == status
    if client:
        assert response.get_json()["client"] == client
    else:
        assert response.get_json()["error"] == "wrong_client"
    assert vapi_api.requests == []


def test_slack_test_with_a_clients_secret_tests_that_client_only(app):
    client = app.test_client()
    assert client.post("/slack/test?client=South", headers=AS_NORTH).get_json() == {
        "error": "wrong_client"}
    assert client.post("/slack/test?client=nobody", headers=AS_NORTH).status_code == 403
    # North has no Slack of its own beyond the shared bot token and no channel: its own answer.
    answer = client.post("/slack/test", headers=AS_NORTH)
    assert answer.status_code == 400 and answer.get_json()["client"] == "North"


def test_pull_metadata_with_a_clients_secret_refuses_another_clients_call(app, vapi_api, ghl):
    vapi_api.calls["call-p"] = {"id": "call-p", "assistantId": "asst-s",
                                "endedReason": "customer-ended-call",
                                "customer": {"number": "+14155550100"}}
    client = app.test_client()
    refused = client.post("/vapi/pull-metadata", json={"callId": "call-p"}, headers=AS_NORTH)
    assert (refused.status_code, refused.get_json()) == (403, {"error": "wrong_client"})
    assert stored(app, "call-p") is None and ghl.notes == []
    agency = client.post("/vapi/pull-metadata", json={"callId": "call-p"}, headers=AS_AGENCY)
    assert agency.status_code == 200 and agency.get_json()["client"] == "South"


def test_health_lists_client_secrets_as_modes(app, integrations_env):
    assert app.test_client().get("/health").get_json()["auth"] == [
        "token", "client-token", "client-hmac"]
    only_clients = create_app({**integrations_env, **CLIENT_SECRETS_ONLY})
    body = only_clients.test_client().get("/health").get_data(as_text=True)
    assert json.loads(body)["auth"] == ["client-token", "client-hmac"]
    assert "north-token" not in body and SOUTH_SECRET not in body


def test_with_client_secrets_only_every_request_needs_one(integrations_env, ghl):
    app = create_app({**integrations_env, **CLIENT_SECRETS_ONLY})
    assert post(app, report("call-o", None), {}).status_code == 401
    assert post(app, report("call-o", None), AS_NORTH).status_code == 200
    assert stored(app, "call-o")["client"] == "North"
