"""Vapi as it really sends (issue 13): 2024-format reports and tool calls only in
``toolWithToolCallList``, through POST /vapi/webhook to the GoHighLevel and Slack fakes."""

from __future__ import annotations

import copy
import json

import pytest

from tests.conftest import WEBHOOK_AUTH
from tests.vapi.payloads_as_sent import (
    CALLER,
    CONTACT_ID,
    EOCR_2024,
    NOTE_TOOL,
    TOOL_CALLS_WITH_TOOL_ONLY,
    note_call,
)
from vapi_bridge import create_app


@pytest.fixture
def app(integrations_env):
    return create_app(integrations_env)


def post(app, payload):
    return app.test_client().post("/vapi/webhook", data=json.dumps(payload),
                                  content_type="application/json", headers=WEBHOOK_AUTH)


def delivered(app, ghl, slack, payload):
    """(GHL note body, Slack fields as "Name: value", Slack fallback text) for one report."""
    assert post(app, payload).get_json() == {"status": "received"}
    [note] = ghl.notes
    assert note["contact_id"] == CONTACT_ID
    [message] = slack.messages
    fields = [field["text"].replace(":*\n", ": ").strip("*")
              for block in message["blocks"] for field in block.get("fields", [])]
    return note["body"], fields, message["text"]


def eocr_2024(**changes):
    payload = copy.deepcopy(EOCR_2024)
    for path, value in changes.items():
        *parents, name = path.split("__")
        place = payload["message"]
        for parent in parents:
            place = place[parent]
        if value is None:
            place.pop(name, None)
        else:
            place[name] = value
    return payload


# end-of-call-report, 2024 format
def test_2024_report_time_duration_from_the_message_and_cost_unknown(app, ghl, slack):
    body, fields, fallback = delivered(app, ghl, slack, EOCR_2024)
    # Time from call.createdAt; duration to the end of the last message (81.4 s + 2.33 s);
    # the "ringing" snapshot's cost 0 is not the call's cost.
    for line in ["Time: 2024-09-12 16:40 UTC", "Duration: 1:24", "Cost: unknown"]:
        assert line in body.splitlines()
    assert "$0" not in body
    assert {"Date: 2024-09-12 16:40 UTC", "Duration: 1:24", "Cost: unknown"} <= set(fields)
    assert fallback.endswith(", 1:24")


@pytest.mark.parametrize(("changes", "time"), [
    ({"call__status": "in-progress", "call__startedAt": "2024-09-12T16:41:01.480Z"},
     "2024-09-12 16:41 UTC"),  # a later snapshot's startedAt first
    ({"call__createdAt": None}, "2024-09-12 16:42 UTC"),  # then the message's timestamp
    ({"call__createdAt": None, "timestamp": 1726159351904}, "2024-09-12 16:42 UTC"),  # epoch ms
], ids=["call-startedAt", "timestamp-iso", "timestamp-epoch-ms"])
def test_2024_report_time_falls_back_in_order(app, ghl, slack, changes, time):
    body, fields, _ = delivered(app, ghl, slack, eocr_2024(**changes))
    assert f"Time: {time}" in body.splitlines()
    assert f"Date: {time}" in fields


@pytest.mark.parametrize("changes", [
    # The conversation in artifact.messages (the current place) instead of the top level.
    {"artifact__messages": EOCR_2024["message"]["messages"], "messages": None},
    # Items that are not usable are passed over.
    {"messages": [*EOCR_2024["message"]["messages"], "noise", {"secondsFromStart": "999"},
                  {"secondsFromStart": True}, {"role": "bot", "secondsFromStart": -5}]},
], ids=["artifact-messages", "unusable-items"])
def test_2024_report_duration_from_the_conversation_wherever_it_is(app, ghl, slack, changes):
    body, fields, _ = delivered(app, ghl, slack, eocr_2024(**changes))
    assert "Duration: 1:24" in body.splitlines() and "Duration: 1:24" in fields


def test_exact_figures_win_over_the_conversation(app, ghl, slack):
    payload = eocr_2024(startedAt="2024-09-12T16:41:02.000Z", endedAt="2024-09-12T16:42:32.000Z")
    body, _, _ = delivered(app, ghl, slack, payload)
    assert "Duration: 1:30" in body.splitlines() and "Time: 2024-09-12 16:41 UTC" in body


@pytest.mark.parametrize(("changes", "cost"), [
    ({"call__cost": 0.5}, "unknown"),  # still the snapshot from the start
    ({"cost": 0}, "$0.0000"),  # the message says 0: shown as 0
    ({"cost": 0.2143}, "$0.2143"),
    ({"call__status": "ended", "call__cost": 0.0871}, "$0.0871"),  # an ended snapshot counts
    ({"call__endedAt": "2024-09-12T16:42:28.000Z", "call__cost": 0}, "$0.0000"),
], ids=["ringing-snapshot", "message-zero", "message", "ended-snapshot", "snapshot-endedAt"])
def test_cost_from_the_call_only_once_that_snapshot_has_ended(app, ghl, slack, changes, cost):
    body, fields, _ = delivered(app, ghl, slack, eocr_2024(**changes))
    assert f"Cost: {cost}" in body.splitlines() and f"Cost: {cost}" in fields


# tool-calls
def test_tool_call_only_in_tool_with_tool_call_list_is_run(app, ghl):
    contact = ghl.add_contact(CALLER, "loc-default")
    answer = post(app, TOOL_CALLS_WITH_TOOL_ONLY).get_json()
    assert answer == {"results": [{"toolCallId": "call_nt1", "name": "add_note",
                                   "result": "The note is added."}]}
    assert [(n["contact_id"], n["body"]) for n in ghl.notes] == [(contact, "Prefers mornings")]


def test_a_call_in_several_lists_runs_once_and_the_lists_are_joined_by_id(app, ghl):
    contact = ghl.add_contact(CALLER, "loc-default")
    payload = copy.deepcopy(TOOL_CALLS_WITH_TOOL_ONLY)
    first, second = note_call("call_nt1", "Prefers mornings"), note_call("call_nt2", "Has a dog")
    message = payload["message"]
    message["toolCallList"] = [first]
    message["toolCalls"] = [first]  # the legacy copy
    message["toolWithToolCallList"] = [{**NOTE_TOOL, "toolCall": call}
                                       for call in (first, second)]
    answer = post(app, payload).get_json()
    assert [result["toolCallId"] for result in answer["results"]] == ["call_nt1", "call_nt2"]
    assert sorted(n["body"] for n in ghl.notes) == ["Has a dog", "Prefers mornings"]
    assert {n["contact_id"] for n in ghl.notes} == {contact}


def test_a_bad_tool_call_in_tool_with_tool_call_list_is_400(app):
    payload = copy.deepcopy(TOOL_CALLS_WITH_TOOL_ONLY)
    payload["message"]["toolWithToolCallList"][0]["toolCall"]["function"]["arguments"] = 42
    response = post(app, payload)
    assert response.status_code == 400
    details = response.get_json()["details"]["message"]["toolWithToolCallList"]
    assert details["0"]["toolCall"]["function"]["arguments"]

