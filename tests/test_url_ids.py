"""Ids that reach an outside URL: checked everywhere they enter, percent-encoded where URLs
are built, and a bad one never reaches GoHighLevel or Vapi (the fakes' request logs say so).

The logs read are pytest-httpserver's ``server.log``: every request the fake received,
matched by a route or not.
"""

from __future__ import annotations

import copy
import json
import logging

import pytest

from tests.vapi.payloads import CALL_ID, EOCR_CURRENT, status_update, tool_calls
from vapi_bridge import create_app
from vapi_bridge.ids import InvalidId, check_url_id, is_url_id, quote_segment, url_path
from vapi_bridge.integrations.ghl import GhlClient
from vapi_bridge.integrations.vapi_api import VapiApi

TOKEN = "url-ids-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BAD_IDS = {"dotdot": "..", "climb": "../../x", "slash": "a/b", "query": "a?x=1",
           "fragment": "a#b", "encoded-dots": "%2e%2e", "space": "a b", "long": "a" * 300,
           "non-ascii": "é1"}
bad_ids = pytest.mark.parametrize("bad", BAD_IDS.values(), ids=BAD_IDS)


def sent(*fakes) -> list[str]:
    """Every request the fakes received, as ``METHOD /path?query``."""
    return [f"{request.method} {request.full_path}" for fake in fakes
            for request, _response in fake.server.log]


@pytest.fixture
def app(integrations_env):
    return create_app({**integrations_env, "WEBHOOK_TOKEN": TOKEN})


def post_webhook(app, payload):
    return app.test_client().post("/vapi/webhook", data=json.dumps(payload), headers=AUTH,
                                  content_type="application/json")


def report(call_id="call-1", contact_id=None, summary=True):
    """EOCR_CURRENT for ``call_id``, without a contact id unless given (as ghlContactId)."""
    payload = copy.deepcopy(EOCR_CURRENT)
    message = payload["message"]
    message["call"]["id"] = call_id
    variables = message["call"]["assistantOverrides"]["variableValues"]
    del variables["ghlContactId"]
    if contact_id is not None:
        variables["ghlContactId"] = contact_id
    if not summary:
        del message["analysis"]["summary"]
    return payload


def delivery(app, call_id="call-1"):
    return app.extensions["state_storage"].get_metadata(call_id)["delivery"]


def assert_crm_steps_skipped(app, slack, call_id="call-1"):
    steps = delivery(app, call_id)
    for step in ("note", "tags"):
        assert steps[step] == {"status": "skipped", "attempts": 0,
                               "last_error": "invalid contact id"}, steps
    # Slack still hears of the call, without a link to a contact.
    assert steps["slack"]["status"] == "ok"
    [posted] = slack.messages
    assert "contacts/detail" not in json.dumps(posted)


# The rule and the path builder
def test_the_rule_takes_real_ids():
    for good in (CALL_ID, "ghl-contact-7", "abc.DEF_1-2", "a" * 128, "0", "pit.v2_x"):
        assert check_url_id(good) == good
    for bad in ("", "a" * 129, "-a", ".a", "_a", "a..b", "a:b", None, 7, *BAD_IDS.values()):
        assert not is_url_id(bad)
        with pytest.raises(InvalidId):
            check_url_id(bad)


def test_an_invalid_id_message_does_not_repeat_the_id():
    with pytest.raises(InvalidId) as caught:
        check_url_id("../../secret-path", "contactId")
    assert "secret-path" not in str(caught.value) and "contactId" in str(caught.value)


def test_url_path_checks_and_percent_encodes_every_segment():
    assert url_path("/contacts/{}/notes", "abc.DEF_1-2") == "/contacts/abc.DEF_1-2/notes"
    assert url_path("/call/{}", CALL_ID) == f"/call/{CALL_ID}"
    assert url_path("/opportunities/") == "/opportunities/"
    assert url_path("/v2/location/{}/contacts/detail/{}", "loc.1", "c_2") \
        == "/v2/location/loc.1/contacts/detail/c_2"
    # What a segment would become if it ever got past the rule.
    assert quote_segment("a/b?x=1#c%2e d") == "a%2Fb%3Fx%3D1%23c%252e%20d"
    assert quote_segment("é") == "%C3%A9" and quote_segment("..") == ".."
    with pytest.raises(TypeError):
        url_path("/contacts/{}/notes")
    with pytest.raises(InvalidId):  # an id formatted into the template by mistake
        url_path("/contacts/../../vapi/call/x/notes")


@bad_ids
def test_url_path_refuses_a_bad_id(bad):
    with pytest.raises(InvalidId):
        url_path("/contacts/{}/notes", bad)


@bad_ids
def test_the_clients_send_nothing_for_a_bad_id(bad, ghl, vapi_api):
    client = GhlClient(ghl.url, "pit-x", "loc-x", retries=0)
    with pytest.raises(InvalidId):
        client.add_note(bad, "body")
    with pytest.raises(InvalidId):
        client.add_tags(bad, ["t"])
    with pytest.raises(InvalidId):
        client.request("GET", "/contacts/{}", bad)
    with pytest.raises(InvalidId):
        VapiApi(vapi_api.url, vapi_api.api_key).get_call(bad)
    assert sent(ghl, vapi_api) == []


def test_the_clients_reach_the_fakes_with_a_good_id(ghl, vapi_api):
    """The control for the test above: the same calls with a good id are seen."""
    GhlClient(ghl.url, "pit-x", "loc-x", retries=0).add_note("contact.1", "body")
    assert VapiApi(vapi_api.url, vapi_api.api_key).get_call("call.1") is None
    assert sent(ghl, vapi_api) == ["POST /contacts/contact.1/notes?", "GET /call/call.1?"]


# call.id in a webhook
@bad_ids
@pytest.mark.parametrize("kind", ["end-of-call-report", "status-update", "tool-calls"])
def test_a_webhook_with_a_bad_call_id_is_400_and_reaches_nobody(app, ghl, slack, vapi_api,
                                                                kind, bad):
    payload = {"end-of-call-report": report(contact_id="ghl-contact-7"),
               "status-update": status_update("ended"),
               "tool-calls": tool_calls({"id": "t1", "type": "function", "function": {
                   "name": "check_availability", "arguments": {"calendarId": "cal-1"}}})}[kind]
    payload["message"]["call"]["id"] = bad
    response = post_webhook(app, payload)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_payload"
    assert sent(ghl, slack, vapi_api) == []


# Contact ids from the call's metadata, from Vapi, from the store
def _with_contact_in(place: str, bad: str) -> dict:
    payload = report()
    message = payload["message"]
    if place == "ghlContactId":
        message["call"]["assistantOverrides"]["variableValues"]["ghlContactId"] = bad
    elif place == "customer.externalId":
        message["customer"] = {"number": "+14155550123", "externalId": bad}
    elif place == "call.customer.externalId":
        message["call"]["customer"]["externalId"] = bad
    else:  # the original service's metadata.ghl.contactId
        message["call"]["metadata"] = {"ghl": {"contactId": bad, "tags": ["x"]}}
    return payload


@bad_ids
@pytest.mark.parametrize("place", ["ghlContactId", "customer.externalId",
                                   "call.customer.externalId", "metadata.ghl.contactId"])
def test_a_bad_contact_id_in_the_report_makes_no_crm_request(app, ghl, slack, vapi_api, caplog,
                                                             place, bad):
    caplog.set_level(logging.INFO)
    response = post_webhook(app, _with_contact_in(place, bad))
    assert response.status_code == 200 and response.get_json() == {"status": "received"}
    assert sent(ghl, vapi_api) == []  # no note, no tags, no phone lookup, no Vapi read
    assert_crm_steps_skipped(app, slack)
    [line] = [r.getMessage() for r in caplog.records if "Invalid contact id" in r.getMessage()]
    assert "callId=call-1" in line and bad not in line
    metadata = app.extensions["state_storage"].get_metadata("call-1")
    assert metadata["contact_id"] is None and metadata["contact_id_invalid"] is True


@bad_ids
def test_a_bad_contact_id_read_back_from_vapi_makes_no_crm_request(app, ghl, slack, vapi_api,
                                                                   bad):
    vapi_api.calls["call-1"] = {"id": "call-1", "metadata": {"ghl": {"contactId": bad}},
                                "analysis": {"summary": "From Vapi."}}
    assert post_webhook(app, report(summary=False)).status_code == 200
    assert sent(vapi_api) == ["GET /call/call-1?"]
    assert sent(ghl) == []
    assert_crm_steps_skipped(app, slack)


@bad_ids
def test_pull_metadata_with_a_bad_contact_id_at_vapi_makes_no_crm_request(app, ghl, slack,
                                                                          vapi_api, bad):
    vapi_api.calls["call-9"] = {"id": "call-9", "customer": {"number": "+14155550100"},
                                "metadata": {"ghl": {"contactId": bad, "tags": ["t"]}},
                                "analysis": {"summary": "Pulled."}}
    response = app.test_client().post("/vapi/pull-metadata", json={"callId": "call-9"},
                                      headers=AUTH)
    assert response.status_code == 200
    assert response.get_json()["delivery"]["note"]["last_error"] == "invalid contact id"
    assert sent(ghl) == []
    assert_crm_steps_skipped(app, slack, "call-9")


@bad_ids
def test_pull_metadata_with_a_bad_call_id_is_400_and_reaches_nobody(app, ghl, vapi_api, bad):
    response = app.test_client().post("/vapi/pull-metadata", json={"callId": bad}, headers=AUTH)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_payload"
    assert sent(ghl, vapi_api) == []


@bad_ids
def test_a_bad_contact_id_kept_for_a_call_started_here_makes_no_crm_request(app, ghl, slack,
                                                                            vapi_api, bad):
    # As /ghl/outbound-call keeps it (written before this rule, or by hand).
    app.extensions["state_storage"].remember_call_contact(
        "call-1", {"contactId": bad, "client": "default"})
    assert post_webhook(app, report()).status_code == 200
    assert sent(ghl, vapi_api) == []
    assert_crm_steps_skipped(app, slack)


def test_a_good_contact_id_still_gets_its_note_and_link(app, ghl, slack):
    """The control: the same report with a good id reaches GoHighLevel."""
    assert post_webhook(app, report(contact_id="ghl.contact_7")).status_code == 200
    assert sent(ghl) == ["POST /contacts/ghl.contact_7/notes?"]
    assert "contacts/detail/ghl.contact_7" in json.dumps(slack.messages)


# /ghl/outbound-call
@bad_ids
@pytest.mark.parametrize("where", ["json", "query"])
def test_outbound_call_with_a_bad_contact_id_is_400(app, vapi_api, where, bad):
    body = {"phone": "+14155550123", "assistantId": "asst-1", "phoneNumberId": "pn-1"}
    client = app.test_client()
    if where == "json":
        response = client.post("/ghl/outbound-call", json={**body, "contact_id": bad},
                               headers=AUTH)
    else:
        response = client.post("/ghl/outbound-call", json=body, headers=AUTH,
                               query_string={"contact_id": bad})
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_contact_id"
    assert sent(vapi_api) == []


# Tool arguments
def run_tool(app, name, arguments):
    payload = tool_calls({"id": "t1", "type": "function",
                          "function": {"name": name, "arguments": arguments}})
    payload["message"]["call"]["customer"] = {"number": "+14155550123"}
    response = post_webhook(app, payload)
    assert response.status_code == 200
    [answer] = response.get_json()["results"]
    return answer


BOOKING = {"startTime": "2099-01-05T10:00", "timezone": "UTC"}
TOOL_IDS = {  # tool/case: (arguments around the id, the argument holding it, the answer)
    "check_availability": ({}, "calendarId", "The calendarId is not a valid calendar id."),
    "book_appointment": (BOOKING, "calendarId", "The calendarId is not a valid calendar id."),
    "update_stage/pipeline": ({"stageId": "stage-1"}, "pipelineId",
                              "The pipelineId is not a valid id."),
    "update_stage/stage": ({"pipelineId": "pipe-1"}, "stageId", "The stageId is not a valid id."),
    "send_sms": ({"body": "Hi"}, "callId", "The callId is not a valid id."),
}
CALENDAR_TOOLS = ("check_availability", "book_appointment")  # they have no workflow mode
TOOL_MODES = [(case, mode) for case in TOOL_IDS for mode in ("api", "workflow")
              if mode == "api" or case not in CALENDAR_TOOLS]


def tool_app(crm, mode):
    env = {"GHL_API_BASE_URL": crm.url, "WEBHOOK_TOKEN": TOKEN, "GHL_API_KEY": "pit-t",
           "GHL_LOCATION_ID": "loc-t", "GHL_CREATE_CONTACTS": "true"}
    if mode == "workflow":
        env["GHL_INCOMING_WEBHOOK_URL_DEFAULT"] = crm.hook_url("default")
    return create_app(env)


@bad_ids
@pytest.mark.parametrize(("case", "mode"), TOOL_MODES)
def test_a_tool_with_a_bad_id_argument_answers_an_error_and_asks_nobody(crm, case, mode, bad):
    arguments, field, expected = TOOL_IDS[case]
    answer = run_tool(tool_app(crm, mode), case.split("/")[0], {**arguments, field: bad})
    assert answer.get("error") == expected and "result" not in answer
    assert sent(crm) == []


@pytest.mark.parametrize(("case", "mode"), TOOL_MODES)
def test_a_tool_with_good_ids_reaches_the_crm(crm, case, mode):
    """The control for the test above: the log does see a tool's requests."""
    arguments, field, _ = TOOL_IDS[case]
    run_tool(tool_app(crm, mode), case.split("/")[0], {**arguments, field: "good.id-1"})
    assert sent(crm)
