"""The ``fields`` and ``stage`` call-ended steps (crm_steps.py) against the GoHighLevel fake over
sockets: values typed per field, precedence of the stage rules, exactly once, parked and
drained, ``check`` against the account, and start-up validation."""

from __future__ import annotations

import copy
import json
import threading

import pytest

from tests.conftest import WEBHOOK_TOKEN
from tests.fakes.ghl_check import FakeGhlCheck
from tests.test_admin import basic
from tests.test_cli import run
from tests.test_outbox import drain_app
from tests.test_pipeline import delivery, post, report
from vapi_bridge import create_app
from vapi_bridge.config import ConfigError
from vapi_bridge.crm_steps import Unusable, convert
from vapi_bridge.integrations.ghl import GhlRetry

LOCATION = "loc-re"
PIPELINE = "pipe-buyers"
# The pipeline's stages in order (the fake lists them out of order, with their position).
ORDER = ["st-new", "st-attempted", "st-contacted", "st-warm", "st-appt", "st-lost"]
REALTY = {
    "name": "Realty", "assistant_ids": ["asst-1"], "ghl_api_key": "pit-re",
    "ghl_location_id": LOCATION,
    "field_map": {"budget": "contact.budget", "timeline": "timeline",
                  "pre_approved": "contact.pre_approved", "appointment.date": "fld-appt",
                  "areas": "contact.areas"},
    "call_fields": {"contact.last_call_outcome": "{outcome}", "last_call_at": "{ended_at}",
                    "last_call_summary": "{summary} ({duration_seconds} s)"},
    "stage_map": {"pipeline_id": PIPELINE, "data_key": "lead_status",
                  "stages": {"booked": "st-appt", "Interested": "st-warm",
                             "not interested": "st-lost", "false": "st-attempted",
                             "completed": "st-contacted", "no-answer": "st-attempted"}},
}
FIELDS = [("contact.budget", "fld-budget", "MONETORY", None),
          ("contact.timeline", "fld-timeline", "SINGLE_OPTIONS",
           ["0-3 months", "3-6 months", "6+ months"]),
          ("contact.pre_approved", "fld-pre", "RADIO", ["Yes", "No"]),
          ("contact.appointment_date", "fld-appt", "DATE", None),
          ("contact.areas", "fld-areas", "MULTIPLE_OPTIONS", ["Downtown", "Riverside", "Hills"]),
          ("contact.last_call_outcome", "fld-outcome", "TEXT", None),
          ("contact.last_call_at", "fld-at", "DATE", None),
          ("contact.last_call_summary", "fld-summary", "LARGE_TEXT", None),
          ("contact.notes_by_hand", "fld-untouched", "TEXT", None)]
DATA = {"budget": "$450,000", "timeline": "3-6 MONTHS", "pre_approved": True,
        "appointment": {"date": "2026-12-03T15:00:00-05:00"}, "areas": ["downtown", "Hills"],
        "lead_status": "booked"}


@pytest.fixture
def ghl():
    """The fake with everything the steps and ``check`` read (same name: integrations_env)."""
    fake = FakeGhlCheck().start()
    for key, field_id, kind, options in FIELDS:
        fake.add_custom_field(LOCATION, key, field_id, data_type=kind, options=options)
    fake.add_pipeline(PIPELINE, ORDER, location_id=LOCATION)
    yield fake
    fake.stop()


@pytest.fixture
def contact(ghl):
    return ghl.add_contact("+14155550123", LOCATION, name="Ana Núñez")


@pytest.fixture
def bridge(integrations_env, monkeypatch):
    # urllib3's sleeps between retries cut to nothing: the same requests, no 3 s per failure.
    monkeypatch.setattr(GhlRetry, "get_backoff_time", lambda self: 0.0)

    def make(client=REALTY, **env):
        return create_app({**integrations_env, "SLACK_BOT_TOKEN": "", "SLACK_CHANNEL_ID": "",
                           "CLIENTS_JSON": json.dumps([client]), **env})

    return make


def call(contact_id, data=DATA, success="true", call_id="call-1", **changes):
    payload = report(call_id=call_id, contact_id=contact_id, **changes)
    analysis = payload["message"]["analysis"]
    analysis["structuredData"] = copy.deepcopy(data)
    analysis["successEvaluation"] = success
    return payload


def puts(ghl):
    return [r for r in ghl.requests if r.method == "PUT" and r.path.startswith("/contacts/")]


def stage_writes(ghl):
    return [r for r in ghl.requests if r.path.startswith("/opportunities/")
            and r.method in ("POST", "PUT")]


# fields
def test_mapped_values_land_with_the_fields_types(bridge, ghl, contact):
    app = bridge()
    post(app, call(contact))
    [update] = ghl.contact_updates
    assert update["contact_id"] == contact and set(update["body"]) == {"customFields"}
    assert ghl.field_values[contact] == {
        "fld-budget": "450000",  # a number, as text: the only spec-valid shape (crm_steps.convert)
        "fld-timeline": "3-6 months",  # the option's own spelling
        "fld-pre": "Yes",  # true as the option saying yes
        "fld-appt": "2026-12-03",
        "fld-areas": ["Downtown", "Hills"],
        "fld-outcome": "completed",
        "fld-at": "2026-11-25",
        "fld-summary": "Booked a cleaning on Tuesday. (150 s)",
    }
    assert delivery(app)["fields"] == {"status": "ok", "attempts": 1, "last_error": None}
    # The location's custom fields and pipelines are read once per process.
    post(app, call(contact, call_id="call-2"))
    assert sum(r.path.endswith("/customFields") for r in ghl.requests) == 1
    assert sum(r.path == "/opportunities/pipelines" for r in ghl.requests) == 1


def test_missing_or_unusable_keys_leave_their_fields_untouched(bridge, ghl, contact, caplog):
    app = bridge()
    post(app, call(contact, data={"budget": "about half a million", "timeline": "soon",
                                  "pre_approved": False, "lead_status": "interested"}))
    [update] = ghl.contact_updates
    sent = {item["id"] for item in update["body"]["customFields"]}
    assert ghl.field_values[contact]["fld-pre"] == "No"
    # Only what the call said and the field takes; never a blank for what it did not say.
    assert sent == {"fld-pre", "fld-outcome", "fld-at", "fld-summary"}
    assert "about half a million" not in caplog.text
    assert "contact.budget left alone callId=call-1 client=Realty: not a number" in caplog.text


@pytest.mark.parametrize("kind, options, value, sent", [
    ("TEXT", None, True, "Yes"), ("TEXT", None, ["a", 2], "a, 2"), ("TEXT", None, 2.50, "2.5"),
    ("NUMERICAL", None, 3, "3"), ("NUMERICAL", None, "1,250.75", "1250.75"),
    ("DATE", None, "2026-12-03", "2026-12-03"),
    ("DATE", None, "2026-12-03T23:30:00-05:00", "2026-12-03"),  # the date where it was said
    ("SINGLE_OPTIONS", ["True", "False"], False, "False"),
    ("CHECKBOX", ["Pre-approved"], True, ["Pre-approved"]),
    ("CHECKBOX", ["Pre-approved"], False, []),  # a lone checkbox unticked
    ("CHECKBOX", ["Email", "SMS"], "sms", ["SMS"]),
])
def test_values_are_converted_to_what_the_field_takes(kind, options, value, sent):
    assert convert(value, {"id": "f", "dataType": kind, "picklistOptions": options}) == sent


@pytest.mark.parametrize("kind, options, value", [
    ("NUMERICAL", None, True), ("NUMERICAL", None, "n/a"), ("DATE", None, "next Tuesday"),
    ("DATE", None, 20261203), ("RADIO", ["Maybe"], True), ("CHECKBOX", ["Email", "SMS"], "fax"),
    ("TEXT", None, {"a": 1}), ("FILE_UPLOAD", None, "x"),
])
def test_values_a_field_cannot_take_are_refused(kind, options, value):
    with pytest.raises(Unusable):
        convert(value, {"id": "f", "dataType": kind, "picklistOptions": options})


def test_a_call_with_nothing_mapped_skips_the_fields_step(bridge, ghl, contact):
    client = {**REALTY, "call_fields": {}}
    app = bridge(client)
    post(app, call(contact, data={"unrelated": 1}))
    assert ghl.contact_updates == []
    assert delivery(app)["fields"]["status"] == "skipped"


def test_neither_step_runs_without_its_map(bridge, ghl, contact):
    client = {k: v for k, v in REALTY.items() if k not in ("field_map", "call_fields",
                                                           "stage_map")}
    app = bridge(client)
    post(app, call(contact))
    assert set(delivery(app)) == {"note", "tags", "slack"}
    assert puts(ghl) == [] and stage_writes(ghl) == []


# stage
@pytest.mark.parametrize("data, success, ended_reason, stage", [
    ({"lead_status": "Not Interested"}, "true", "customer-ended-call", "st-lost"),  # data rule
    ({"lead_status": "maybe"}, "false", "customer-ended-call", "st-attempted"),  # then success
    ({}, "true", "customer-ended-call", "st-contacted"),  # then the outcome
    ({}, None, "customer-did-not-answer", "st-attempted"),
])
def test_the_stage_follows_the_precedence_and_is_created_when_absent(
        bridge, ghl, contact, data, success, ended_reason, stage):
    app = bridge()
    post(app, call(contact, data=data, success=success, endedReason=ended_reason))
    [opportunity] = ghl.opportunities.values()
    assert (opportunity["pipelineStageId"], opportunity["contactId"]) == (stage, contact)
    assert opportunity["name"] == "Ana Núñez - Realty" and opportunity["status"] == "open"
    assert delivery(app)["stage"]["status"] == "ok"


def test_no_stage_for_the_call_skips_the_step(bridge, ghl, contact):
    client = {**REALTY, "stage_map": {"pipeline_id": PIPELINE, "stages": {"booked": "st-appt"}}}
    app = bridge(client)
    post(app, call(contact, data={"lead_status": "booked"}))  # no data_key: the value is no rule
    assert stage_writes(ghl) == [] and delivery(app)["stage"]["status"] == "skipped"


def test_the_open_opportunity_moves_forward_never_backwards(bridge, ghl, contact):
    ghl.add_opportunity(contact, PIPELINE, "st-lost", status="lost", location_id=LOCATION)
    opened = ghl.add_opportunity(contact, PIPELINE, "st-appt", location_id=LOCATION)
    app = bridge()
    post(app, call(contact, data={"lead_status": "interested"}))  # warm is before appt
    assert stage_writes(ghl) == [] and ghl.opportunities[opened]["pipelineStageId"] == "st-appt"
    assert delivery(app)["stage"]["status"] == "ok"
    post(app, call(contact, data={"lead_status": "not interested"}, call_id="call-2"))
    [moved] = stage_writes(ghl)
    assert (moved.method, moved.path) == ("PUT", f"/opportunities/{opened}")
    assert ghl.opportunities[opened]["pipelineStageId"] == "st-lost"


def test_backwards_moves_when_the_client_allows_it(bridge, ghl, contact):
    opened = ghl.add_opportunity(contact, PIPELINE, "st-appt", location_id=LOCATION)
    app = bridge({**REALTY, "stage_allow_backwards": True})
    post(app, call(contact, data={"lead_status": "interested"}))
    assert ghl.opportunities[opened]["pipelineStageId"] == "st-warm"
    assert not any(r.path == "/opportunities/pipelines" for r in ghl.requests)  # order unneeded


# exactly once
def test_30_concurrent_deliveries_give_one_update_and_one_stage_move(bridge, ghl, contact,
                                                                     redis_url, prefix):
    opened = ghl.add_opportunity(contact, PIPELINE, "st-new", location_id=LOCATION)
    app = bridge(REDIS_URL=redis_url, STATE_STORAGE_PREFIX=prefix)
    ghl.delay = 0.05  # long enough for the deliveries to overlap
    threads = [threading.Thread(target=post, args=(app, call(contact))) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ghl.contact_updates) == 1
    [moved] = stage_writes(ghl)
    assert moved.path == f"/opportunities/{opened}"
    assert ghl.opportunities[opened]["pipelineStageId"] == "st-appt"
    post(app, call(contact))  # and once more, after the rush: still nothing new
    assert len(ghl.contact_updates) == 1 and len(stage_writes(ghl)) == 1


def test_ghl_500_then_ok_parks_both_and_the_outbox_delivers_each_once(bridge, ghl, contact):
    app = bridge()
    # note, fields (custom fields read) and stage (opportunity search): 1 try + 3 retries each.
    ghl.fail_next(12, 500)
    post(app, call(contact))
    steps = delivery(app)
    assert (steps["fields"]["status"], steps["stage"]["status"]) == ("parked", "parked")
    assert "HTTP 500" in steps["fields"]["last_error"]
    assert ghl.contact_updates == [] and ghl.opportunities == {}
    assert drain_app(app, include_future=True).delivered == 3
    assert len(ghl.contact_updates) == 1 and len(ghl.opportunities) == 1
    assert len(ghl.notes) == 1
    assert delivery(app)["fields"] == {"status": "ok", "attempts": 2, "last_error": None}
    assert delivery(app)["stage"]["status"] == "ok"
    assert drain_app(app, include_future=True).seen == 0
    post(app, call(contact))
    assert len(ghl.contact_updates) == 1 and len(stage_writes(ghl)) == 1


def test_the_status_page_shows_both_steps(bridge, ghl, contact):
    app = bridge(ADMIN_TOKEN="a" * 32)
    post(app, call(contact))
    html = app.test_client().get("/", headers=basic(password="a" * 32)).get_data(as_text=True)
    assert "<th>Fields</th><th>Stage</th>" in html
    assert 'class="step-fields"' in html and 'class="step-stage"' in html


def test_replay_shows_both_steps_and_repeats_nothing(bridge, ghl, contact, vapi_api):
    vapi_api.calls["call-9"] = {
        "id": "call-9", "assistantId": "asst-1", "endedReason": "customer-ended-call",
        "endedAt": "2026-11-25T10:02:30Z", "metadata": {"ghl": {"contactId": contact}},
        "analysis": {"summary": "Wants a tour.", "structuredData": DATA}}
    app = bridge()
    first = run(app, "replay", "call-9")
    assert first.exit_code == 0, first.output
    assert "  fields ok (attempts 1)" in first.stdout
    assert "  stage  ok (attempts 1)" in first.stdout
    again = run(app, "replay", "call-9")
    assert "  fields ok (attempts 0)" in again.stdout and "  stage  ok (attempts 0)" in again.stdout
    assert len(ghl.contact_updates) == 1 and len(stage_writes(ghl)) == 1


# check
def test_check_passes_maps_that_match_the_account(bridge, ghl):
    result = run(bridge(), "check")
    lines = [line for line in result.stdout.splitlines() if "(Realty)" in line]
    assert "OK   ghl (Realty) field_map: 8 custom field(s) found" in lines
    assert "OK   ghl (Realty) stage_map: pipeline 'pipe-buyers', 5 stage(s) found" in lines
    assert ("OK   ghl (Realty) locations/customFields.readonly (call fields, custom"
            " fields named by key): 9 contact custom field(s)") in lines


def test_check_fails_naming_an_unknown_field_pipeline_or_stage(bridge, ghl):
    client = {**REALTY, "field_map": {**REALTY["field_map"], "mortgage": "contact.lender"},
              "stage_map": {**REALTY["stage_map"],
                            "stages": {**REALTY["stage_map"]["stages"], "won": "st-gone"}}}
    result = run(bridge(client), "check")
    assert result.exit_code == 1
    fails = [line for line in result.stdout.splitlines() if line.startswith("FAIL ghl")]
    assert fails == [
        "FAIL ghl (Realty) field_map: no contact custom field 'contact.lender' -> create it in"
        " GoHighLevel or fix field_map / call_fields",
        "FAIL ghl (Realty) stage_map: pipeline 'pipe-buyers' has no stage 'st-gone'"]
    ghl.pipelines.clear()
    fails = [line for line in run(bridge(client), "check").stdout.splitlines()
             if line.startswith("FAIL ghl (Realty) stage_map")]
    assert fails == ["FAIL ghl (Realty) stage_map: no pipeline 'pipe-buyers'"]


# start-up
@pytest.mark.parametrize("changes, message", [
    ({"field_map": {"budget": ""}}, "client #1 (Realty): field field_map: budget: value:"),
    ({"call_fields": {"x": "{outcome} on {date}"}},
     "client #1 (Realty): field call_fields: x: value: Unknown placeholder {date}"),
    ({"call_fields": {"x": "{outcome"}}, "field call_fields: x: value: "),
    ({"stage_map": {"stages": {"booked": "st-appt"}}},
     "client #1 (Realty): field stage_map: pipeline_id: Missing data"),
    ({"stage_map": {"pipeline_id": "../x", "stages": {"a": "b"}}},
     "field stage_map: pipeline_id: Not a GoHighLevel id"),
    ({"stage_map": {"pipeline_id": "p", "stages": {}}}, "field stage_map: stages: Shorter"),
    ({"stage_map": {"pipeline_id": "p", "stages": {"a": "b"}, "stage": "x"}},
     "field stage_map: stage: Unknown field."),
    ({"stage_allow_backwards": "sometimes"}, "field stage_allow_backwards: Not a valid boolean."),
    ({"ghl_api_key": None}, "client #1 (Realty): field field_map: needs ghl_api_key"),
])
def test_bad_maps_stop_start_up_naming_client_and_field(changes, message):
    client = {k: v for k, v in {**REALTY, **changes}.items() if v is not None}
    with pytest.raises(ConfigError) as caught:
        create_app({"CLIENTS_JSON": json.dumps([client]), "WEBHOOK_TOKEN": WEBHOOK_TOKEN})
    assert message in str(caught.value)
