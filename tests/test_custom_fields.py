"""``customFields`` from call metadata reach ``POST /contacts/upsert`` only in the spec's shape.

GoHighLevel's spec (contacts.json, ``UpsertContactDto.customFields``): each item is
``{"id", "field_value"}`` with ``id`` required. The read shape ``{"id", "value"}`` is converted, a
``key`` is looked up with ``GET /locations/{locationId}/customFields`` (once per process), and
anything else is dropped with a log line.
"""

from __future__ import annotations

import logging

import pytest

from tests.test_pipeline import PHONE, delivery, post, report
from vapi_bridge import create_app

SECRET = "Maria-private-value-42"  # a value that must never reach the log


@pytest.fixture
def app(integrations_env):
    return create_app(integrations_env)


def with_fields(custom_fields, call_id="call-1"):
    payload = report(call_id=call_id, contact_id=None)
    payload["message"]["call"]["metadata"] = {"ghl": {"contact": {
        "phone": PHONE, "firstName": "Ana", "customFields": custom_fields}}}
    return payload


def upserted_fields(ghl):
    return [upsert.get("customFields") for upsert in ghl.upserts]


def field_lookups(ghl):
    return [r for r in ghl.requests if r.path.endswith("/customFields")]


def test_the_spec_shape_is_sent_as_it_is(app, ghl):
    fields = [{"id": "fld-1", "field_value": "Google"},
              {"id": "fld-2", "field_value": ["red", "blue"]}]
    post(app, with_fields(fields))
    assert upserted_fields(ghl) == [fields]
    assert field_lookups(ghl) == []
    assert delivery(app)["note"]["status"] == "ok"


def test_the_read_shape_id_value_is_converted(app, ghl):
    post(app, with_fields([{"id": "fld-1", "value": "Google"}]))
    assert upserted_fields(ghl) == [[{"id": "fld-1", "field_value": "Google"}]]


def test_a_key_is_resolved_once_per_process(app, ghl):
    ghl.add_custom_field("loc-default", "contact.lead_source", "fld-lead")
    ghl.add_custom_field("loc-default", "contact.budget", "fld-budget", data_type="NUMERICAL")
    ghl.add_custom_field("loc-other", "contact.lead_source", "fld-elsewhere")
    post(app, with_fields([{"key": "contact.lead_source", "field_value": "Google"},
                           {"key": "budget", "value": "500"}]))
    post(app, with_fields([{"key": "lead_source", "field_value": "Radio"}], call_id="call-2"))
    assert upserted_fields(ghl) == [
        [{"id": "fld-lead", "field_value": "Google"}, {"id": "fld-budget", "field_value": "500"}],
        [{"id": "fld-lead", "field_value": "Radio"}]]
    [lookup] = field_lookups(ghl)  # two reports, one read
    assert lookup.method == "GET" and lookup.path == "/locations/loc-default/customFields"
    assert lookup.args["model"] == "contact" and lookup.headers["Version"] == "2021-07-28"


def test_unknown_keys_and_garbage_are_dropped_with_a_log_line(app, ghl, caplog):
    caplog.set_level(logging.WARNING, logger="vapi_bridge")
    ghl.add_custom_field("loc-default", "contact.lead_source", "fld-lead")
    post(app, with_fields([
        {"key": "no_such_field", "field_value": SECRET},  # 0: unknown key
        "lead_source",  # 1: not an object
        {"field_value": SECRET},  # 2: neither id nor key
        {"id": "fld-1"},  # 3: no value
        {"id": "fld-1", "value": True},  # 4: a type no field_value schema has
        {"id": "fld-1", "value": [SECRET, 3]},  # 5: a list of non-texts
        {"key": "lead_source", "value": SECRET},  # kept
    ]))
    assert upserted_fields(ghl) == [[{"id": "fld-lead", "field_value": SECRET}]]
    dropped = [r.getMessage() for r in caplog.records if "customFields item" in r.getMessage()]
    assert [line.split(" dropped")[0] for line in dropped] == [
        f"[GHL] customFields item #{i}" for i in range(6)]
    assert "no contact custom field has the key 'no_such_field'" in dropped[0]
    assert SECRET not in caplog.text
    assert delivery(app)["note"]["status"] == "ok"  # the call's note still lands


def test_nothing_usable_leaves_customfields_out(app, ghl, caplog):
    caplog.set_level(logging.WARNING, logger="vapi_bridge")
    post(app, with_fields({"lead_source": SECRET}))  # a mapping, not the spec's list
    assert ghl.upserts == [{"phone": PHONE, "firstName": "Ana", "locationId": "loc-default"}]
    assert "[GHL] customFields dropped: a dict, not a list" in caplog.text
    assert SECRET not in caplog.text


def test_unreadable_custom_fields_drop_the_keys_not_the_call(app, ghl, caplog):
    caplog.set_level(logging.WARNING, logger="vapi_bridge")
    ghl.refused_scopes.add("locations/customFields.readonly")
    fields = [{"key": "lead_source", "field_value": SECRET}, {"id": "fld-1", "value": "kept"}]
    post(app, with_fields(fields))
    post(app, with_fields(fields, call_id="call-2"))
    assert upserted_fields(ghl) == [[{"id": "fld-1", "field_value": "kept"}]] * 2
    assert len(field_lookups(ghl)) == 2  # a refusal is not cached: the scope may be granted
    assert "The token is not authorized for this scope." in caplog.text
    assert SECRET not in caplog.text
    assert delivery(app, "call-2")["note"]["status"] == "ok"

