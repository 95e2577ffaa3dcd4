"""POST /ghl/outbound-call: a GHL workflow starts a Vapi call; the contact travels with it."""

from __future__ import annotations

import json
import threading

import pytest

from tests.vapi.payloads import EOCR_CURRENT
from vapi_bridge import create_app

TOKEN = "outbound-token"
CLIENTS = [{"name": "North", "ghl_api_key": "pit-north", "ghl_location_id": "loc-north",
            "vapi_assistant_id": "asst-north", "vapi_phone_number_id": "pn-north",
            "slack_channel_id": "C-north"},
           {"name": "London", "ghl_api_key": "pit-london", "ghl_location_id": "loc-london",
            "vapi_assistant_id": "asst-london", "vapi_phone_number_id": "pn-london",
            "default_country": "GB"}]
# What a GoHighLevel workflow "Custom Webhook" sends: the standard contact payload.
GHL_CONTACT = {"contact_id": "ghl-c-1", "first_name": "Ana", "last_name": "Núñez",
               "full_name": "Ana Núñez", "email": "ana@example.com", "phone": "(415) 555-0123",
               "tags": "lead,spanish", "location": {"id": "loc-north", "name": "North Dental"},
               "contact_source": "facebook"}
EXPECTED = {
    "assistantId": "asst-north", "phoneNumberId": "pn-north",
    "customer": {"number": "+14155550123", "name": "Ana Núñez", "email": "ana@example.com",
                 "externalId": "ghl-c-1"},
    "assistantOverrides": {"variableValues": {
        "ghlContactId": "ghl-c-1", "ghlLocationId": "loc-north", "firstName": "Ana",
        "lastName": "Núñez", "email": "ana@example.com"}},
}


@pytest.fixture
def app(integrations_env):
    return create_app({**integrations_env, "WEBHOOK_TOKEN": TOKEN,
                       "CLIENTS_JSON": json.dumps(CLIENTS)})


def start(app, payload=None, query="", form=None, auth=True):
    url = f"/ghl/outbound-call?{query}" + (f"&token={TOKEN}" if auth else "")
    client = app.test_client()
    if form is not None:
        return client.post(url, data=form)
    return client.post(url, json=payload)


def test_json_payload_creates_the_call_with_the_contact_in_it(app, vapi_api):
    response = start(app, GHL_CONTACT)
    assert response.status_code == 201
    assert response.get_json() == {"callId": "call-1"}
    assert vapi_api.created == [EXPECTED]
    request = next(r for r in vapi_api.requests if r.method == "POST")
    assert request.headers["Authorization"] == "Bearer vapi-test-key"
    stored = app.extensions["state_storage"].get_call_contact("call-1")
    assert stored == {"contactId": "ghl-c-1", "client": "North", "locationId": "loc-north"}


def test_form_payload_and_query_overrides(app, vapi_api):
    form = {"contact_id": "ghl-c-2", "first_name": "Bo", "phone": "+1 415 555 0199",
            "location_id": "loc-north"}
    response = start(app, form=form, query="assistantId=asst-other&requestId=run-7")
    assert response.status_code == 201
    [body] = vapi_api.created
    assert body["assistantId"] == "asst-other" and body["phoneNumberId"] == "pn-north"
    assert body["customer"] == {"number": "+14155550199", "name": "Bo", "externalId": "ghl-c-2"}


def test_client_by_explicit_name_and_its_default_country(app, vapi_api):
    payload = {"contact_id": "uk-1", "phone": "020 7946 0018", "client": "London"}
    assert start(app, payload).status_code == 201
    [body] = vapi_api.created
    assert body["customer"]["number"] == "+442079460018"
    assert body["assistantOverrides"]["variableValues"]["ghlLocationId"] == "loc-london"


@pytest.mark.parametrize(("payload", "status", "error"), [
    ({**GHL_CONTACT, "phone": ""}, 400, "missing_phone"),
    ({**GHL_CONTACT, "phone": "12"}, 400, "invalid_phone"),
    ({**GHL_CONTACT, "phone": "call me maybe"}, 400, "invalid_phone"),
    ({**GHL_CONTACT, "phone": "555-0199"}, 400, "invalid_phone"),  # local: no area code
    ({**GHL_CONTACT, "contact_id": None}, 400, "missing_contact_id"),
    ({**GHL_CONTACT, "contact_id": "a b"}, 400, "invalid_contact_id"),
    ({**GHL_CONTACT, "location": {"id": "loc-unknown"}}, 404, "unknown_client"),
    ({**GHL_CONTACT, "location": None, "client": "Nobody"}, 404, "unknown_client"),
    ({**GHL_CONTACT, "location": None}, 400, "missing_assistantId"),  # default client has none
])
def test_refusals_are_clear_and_start_nothing(app, vapi_api, payload, status, error):
    response = start(app, payload)
    assert response.status_code == status
    assert response.get_json()["error"] == error
    assert vapi_api.created == []


def test_needs_the_webhook_token(app, vapi_api):
    assert start(app, GHL_CONTACT, auth=False).status_code == 401
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert app.test_client().post("/ghl/outbound-call", json=GHL_CONTACT,
                                  headers=headers).status_code == 201


def test_vapi_4xx_is_passed_through(app, vapi_api):
    vapi_api.fail_next(1, 400)
    response = start(app, GHL_CONTACT)
    assert response.status_code == 400
    assert response.get_json()["error"] == "vapi_rejected"
    assert "scripted failure" in response.get_json()["message"]


def test_vapi_down_is_502_and_stores_nothing(app, vapi_api):
    vapi_api.stop()
    response = start(app, GHL_CONTACT)
    assert response.status_code == 502
    assert response.get_json()["error"] == "vapi_unavailable"
    backend = app.extensions["state_storage"].backend
    assert [key for key in backend._entries if "call-contact" in key] == []
    assert not app.extensions["state_storage"].get_answer("outbound", ("ghl-c-1",))


def test_10_concurrent_identical_requests_start_one_call(app, vapi_api):
    vapi_api.delay = 0.3
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(start(app, GHL_CONTACT)))
               for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(vapi_api.created) == 1
    assert sorted(a.status_code for a in answers) == [200] * 9 + [201]
    assert {a.get_json()["callId"] for a in answers} == {"call-1"}


def test_request_id_makes_each_workflow_run_its_own_call(app, vapi_api):
    assert start(app, {**GHL_CONTACT, "requestId": "run-1"}).status_code == 201
    assert start(app, {**GHL_CONTACT, "requestId": "run-1"}).status_code == 200
    assert start(app, {**GHL_CONTACT, "requestId": "run-2"}).status_code == 201
    assert len(vapi_api.created) == 2


def test_dry_run_shows_the_request_without_secrets(app, vapi_api):
    response = start(app, GHL_CONTACT, query="dry_run=1")
    assert response.status_code == 200
    body = response.get_json()
    assert body["request"]["body"] == EXPECTED and body["request"]["method"] == "POST"
    assert "vapi-test-key" not in response.get_data(as_text=True)
    assert vapi_api.created == []


def test_the_loop_a_webhook_without_contact_id_still_notes_the_right_contact(app, vapi_api, ghl,
                                                                              slack):
    call_id = start(app, GHL_CONTACT).get_json()["callId"]
    report = json.loads(json.dumps(EOCR_CURRENT))
    report["message"]["call"] = {"id": call_id, "assistantId": "asst-unknown"}  # nothing else
    report["message"].pop("customer", None)
    response = app.test_client().post(f"/vapi/webhook?token={TOKEN}", json=report)
    assert response.status_code == 200
    [note] = ghl.notes
    assert note["contact_id"] == "ghl-c-1" and note["token"] == "pit-north"
    assert slack.messages[0]["channel"] == "C-north"
