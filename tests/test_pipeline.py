"""The call-ended pipeline against local GoHighLevel, Slack and Vapi servers (over sockets)."""

from __future__ import annotations

import copy
import json
import logging
import threading

import pytest

from tests.conftest import WEBHOOK_AUTH
from tests.vapi.payloads import EOCR_CURRENT
from vapi_bridge import create_app

PHONE = "+14155550123"


def report(call_id="call-1", contact_id="ghl-contact-7", assistant_id="asst-1", **changes):
    payload = copy.deepcopy(EOCR_CURRENT)
    message = payload["message"]
    message["call"]["id"] = call_id
    message["call"]["assistantId"] = assistant_id
    variables = message["call"]["assistantOverrides"]["variableValues"]
    if contact_id:
        variables["ghlContactId"] = contact_id
    else:
        del variables["ghlContactId"]
    message.update(changes)
    return payload


def post(app, payload):
    return app.test_client().post("/vapi/webhook", data=json.dumps(payload),
                                  content_type="application/json", headers=WEBHOOK_AUTH)


def delivery(app, call_id="call-1"):
    return app.extensions["state_storage"].get_metadata(call_id)["delivery"]


@pytest.fixture
def bridge(integrations_env):
    def make(**env):
        return create_app({**integrations_env, **env})

    return make


# Contact sources
def test_contact_from_metadata_gets_note_and_slack(bridge, ghl, slack):
    app = bridge()
    assert post(app, report()).get_json() == {"status": "received"}
    [note] = ghl.notes
    assert note["contact_id"] == "ghl-contact-7" and note["token"] == "pit-default"
    assert [r.path for r in ghl.requests] == ["/contacts/ghl-contact-7/notes"]
    body = note["body"]
    for expected in ["📞 Vapi call: Completed (assistant-ended-call)", "Time: 2026-11-25 10:00 UTC",
                     "Duration: 2:30", "Cost: $0.1234", "Booked a cleaning on Tuesday.",
                     "Success evaluation: true", "booked: True", "service: cleaning",
                     "Recording: https://storage.vapi.ai/m.wav", "Call ID: call-1",
                     "Transcript:\nAI: Hello\nUser: Hi"]:
        assert expected in body
    [message] = slack.messages
    assert message["channel"] == "C-default" and message["token"] == "xoxb-default"
    assert "<!channel>" not in json.dumps(message)
    blocks = json.dumps(message["blocks"])
    assert "*Lead:*\\nAna N\\u00fa\\u00f1ez" in blocks and "*Cost:*\\n$0.1234" in blocks
    assert "/v2/location/loc-default/contacts/detail/ghl-contact-7|Contact in GoHighLevel" in blocks
    assert delivery(app) == {
        "note": {"status": "ok", "attempts": 1, "last_error": None},
        "tags": {"status": "skipped", "attempts": 0, "last_error": "no tags for this call"},
        "slack": {"status": "ok", "attempts": 1, "last_error": None},
    }


def test_contact_from_metadata_ghl_contact_is_upserted_and_tagged(bridge, ghl):
    payload = report(contact_id=None)
    payload["message"]["call"]["metadata"] = {"ghl": {
        "contact": {"phone": PHONE, "firstName": "Ana", "email": "ana@example.com",
                    "unknownThing": 1, "tags": ["overwrites-all"]},
        "tags": ["vapi-lead", "spanish"]}}
    clients = [{"name": "Dental", "assistant_ids": ["asst-1"], "ghl_api_key": "pit-dental",
                "ghl_location_id": "loc-dental", "outcome_tags": {"completed": "call-completed"}}]
    app = bridge(CLIENTS_JSON=json.dumps(clients))
    post(app, payload)
    assert ghl.upserts == [{"phone": PHONE, "firstName": "Ana", "email": "ana@example.com",
                            "locationId": "loc-dental"}]
    [contact_id] = ghl.contacts
    assert [n["contact_id"] for n in ghl.notes] == [contact_id]
    assert ghl.tags == [{"contact_id": contact_id, "token": "pit-dental",
                         "tags": ["vapi-lead", "spanish", "call-completed"]}]
    assert delivery(app)["tags"]["status"] == "ok"


def test_contact_found_by_phone(bridge, ghl):
    existing = ghl.add_contact(PHONE, "loc-default")
    app = bridge()
    post(app, report(contact_id=None))
    [lookup, note] = ghl.requests
    assert (lookup.path, dict(lookup.args)) == (
        "/contacts/search/duplicate", {"locationId": "loc-default", "number": PHONE})
    assert note.path == f"/contacts/{existing}/notes"
    assert ghl.upserts == []


def test_contact_created_when_absent(bridge, ghl):
    app = bridge()
    post(app, report(contact_id=None))
    assert [r.path for r in ghl.requests] == ["/contacts/search/duplicate", "/contacts/upsert",
                                              "/contacts/contact-1/notes"]
    assert ghl.upserts == [{"phone": PHONE, "name": "Ana Núñez", "source": "Vapi call",
                            "locationId": "loc-default"}]


def test_no_create_when_disabled(bridge, ghl, slack):
    app = bridge(GHL_CREATE_CONTACTS="false")
    post(app, report(contact_id=None))
    assert [r.path for r in ghl.requests] == ["/contacts/search/duplicate"]
    assert delivery(app)["note"]["status"] == "skipped"
    assert len(slack.messages) == 1


def test_no_phone_and_no_id_means_no_crm_writes(bridge, ghl, caplog):
    caplog.set_level(logging.INFO)
    payload = report(contact_id=None)
    del payload["message"]["call"]["customer"]
    app = bridge(VAPI_API_KEY=None)
    post(app, payload)
    assert ghl.requests == []
    assert delivery(app)["note"] == {"status": "skipped", "attempts": 0,
                                     "last_error": "no contact id and no customer phone number"}


# Exactly once
def test_redelivery_does_not_duplicate(bridge, ghl, slack):
    app = bridge(CLIENTS_JSON=json.dumps([{
        "name": "A", "assistant_ids": ["asst-1"], "ghl_api_key": "pit-a",
        "ghl_location_id": "loc-a", "slack_channel_id": "C-a",
        "outcome_tags": {"completed": "done"}}]))
    for _ in range(3):
        assert post(app, report()).status_code == 200
    assert len(ghl.notes) == 1 and len(ghl.tags) == 1 and len(slack.messages) == 1
    assert {step["status"] for step in delivery(app).values()} == {"ok"}


def test_ghl_500_then_201_gives_one_note(bridge, ghl):
    ghl.fail_next(1, 500)
    app = bridge()
    post(app, report())
    assert len(ghl.notes) == 1
    assert len(ghl.requests) == 2
    assert delivery(app)["note"]["status"] == "ok"


def test_rate_limit_headers_are_honoured(bridge, ghl):
    ghl.fail_next(1, 429, {"X-RateLimit-Remaining": "0", "X-RateLimit-Daily-Remaining": "1000",
                           "X-RateLimit-Interval-Milliseconds": "200"})
    app = bridge()
    post(app, report())
    assert len(ghl.notes) == 1


def test_daily_limit_spent_is_not_retried(bridge, ghl):
    ghl.fail_next(1, 429, {"X-RateLimit-Daily-Remaining": "0"})
    app = bridge()
    post(app, report())
    assert ghl.notes == [] and len(ghl.requests) == 1
    note = delivery(app)["note"]
    assert note["status"] == "parked" and "HTTP 429" in note["last_error"]


def test_ghl_down_releases_the_claim_and_a_later_delivery_succeeds(bridge, ghl):
    ghl.fail_next(4, 503)  # the first delivery and its three retries
    app = bridge()
    post(app, report())
    assert ghl.notes == []
    assert delivery(app)["note"]["status"] == "parked"
    assert app.extensions["state_storage"].was_note_sent("call-1", "ghl-contact-7") is False
    post(app, report())
    assert len(ghl.notes) == 1
    post(app, report())
    assert len(ghl.notes) == 1


def test_permanent_ghl_error_is_not_retried(bridge, ghl):
    ghl.fail_next(1, 401)
    app = bridge()
    post(app, report())
    assert len(ghl.requests) == 1
    note = delivery(app)["note"]
    assert note["status"] == "dead" and "HTTP 401" in note["last_error"]


def test_slack_down_never_blocks_the_note(bridge, ghl, slack):
    slack.stop()
    app = bridge()
    post(app, report())
    assert len(ghl.notes) == 1
    slack_step = delivery(app)["slack"]
    assert slack_step["status"] == "parked" and slack_step["last_error"].startswith("slack:")


def test_slack_incoming_webhook_and_mention(bridge, slack):
    app = bridge(SLACK_BOT_TOKEN=None, SLACK_CHANNEL_ID=None, SLACK_WEBHOOK_URL=slack.webhook_url,
                 SLACK_MENTION="<!here>")
    post(app, report())
    [message] = slack.messages
    assert message["text"].startswith("<!here> New call for default: Completed")
    assert delivery(app)["slack"]["status"] == "ok"


def test_slow_ghl_is_pending_at_the_deadline(bridge, ghl, slack):
    ghl.delay = 3
    app = bridge(PIPELINE_DEADLINE_SECONDS="1")
    response = post(app, report())
    assert response.status_code == 200
    steps = delivery(app)
    assert steps["note"]["status"] == "parked"
    assert steps["note"]["last_error"] == "still running at the pipeline deadline"
    assert steps["slack"]["status"] == "ok"


# Clients
def test_two_clients_interleaved_keep_their_own_tokens(bridge, ghl, slack):
    clients = [
        {"name": "North", "assistant_ids": ["asst-north"], "ghl_api_key": "pit-north",
         "ghl_location_id": "loc-north", "slack_channel_id": "C-north"},
        {"name": "South", "assistant_ids": ["asst-south"], "ghl_api_key_env": "SOUTH_GHL_KEY",
         "ghl_location_id": "loc-south", "slack_channel_id": "C-south",
         "slack_bot_token": "xoxb-south"},
    ]
    app = bridge(CLIENTS_JSON=json.dumps(clients), SOUTH_GHL_KEY="pit-south")
    payloads = [report(f"call-{side}-{n}", contact_id=f"contact-{side}-{n}",
                       assistant_id=f"asst-{side}")
                for n in range(10) for side in ("north", "south")]
    threads = [threading.Thread(target=post, args=(app, p)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ghl.notes) == 20
    for note in ghl.notes:
        side = note["contact_id"].split("-")[1]
        assert note["token"] == f"pit-{side}"
    for message in slack.messages:
        side = "north" if message["channel"] == "C-north" else "south"
        assert message["token"] == ("xoxb-south" if side == "south" else "xoxb-default")
        assert f"loc-{side}/contacts/detail/contact-{side}" in json.dumps(message["blocks"])
    assert len(slack.messages) == 20


def test_unknown_assistant_goes_to_the_default_client(bridge, ghl):
    app = bridge(CLIENTS_JSON=json.dumps([{"name": "A", "assistant_ids": ["asst-a"],
                                           "ghl_api_key": "pit-a", "ghl_location_id": "l"}]))
    post(app, report(assistant_id="asst-unknown"))
    assert ghl.notes[0]["token"] == "pit-default"


# Filling gaps from the Vapi API
def test_missing_contact_and_summary_are_read_from_vapi_once(bridge, ghl, vapi_api):
    vapi_api.calls["call-1"] = {
        "id": "call-1", "metadata": {"ghl": {"contactId": "from-vapi"}},
        "analysis": {"summary": "Summary from the API."}}
    payload = report(contact_id=None, analysis={})
    app = bridge()
    post(app, payload)
    assert len(vapi_api.requests) == 1
    assert vapi_api.requests[0].headers["Authorization"] == "Bearer vapi-test-key"
    [note] = ghl.notes
    assert note["contact_id"] == "from-vapi" and "Summary from the API." in note["body"]


def test_complete_reports_do_not_call_vapi(bridge, vapi_api):
    post(bridge(), report())
    assert vapi_api.requests == []


# Privacy
def test_phone_numbers_emails_and_tokens_stay_out_of_the_logs(bridge, ghl, caplog):
    caplog.set_level(logging.DEBUG)
    ghl.fail_next(1, 401)
    payload = report(contact_id=None)
    payload["message"]["call"]["customer"]["email"] = "ana@example.com"
    post(bridge(), payload)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "werkzeug")  # the fakes'
    assert "Contact lookup failed" in ours
    for secret in (PHONE, "4155550123", "ana@example.com", "pit-default", "xoxb-default",
                   "vapi-test-key"):
        assert secret not in ours
