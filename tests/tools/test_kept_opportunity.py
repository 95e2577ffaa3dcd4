"""update_stage keeps the opportunity it left with the call (issue 15): a later update_stage of
the same call is one PUT, or none. What GoHighLevel is asked, read from the fake's log over
sockets."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tests.conftest import WEBHOOK_TOKEN
from tests.tools.test_caller_contact import tool_call
from tests.tools.test_crm import (
    CALLER,
    LOCATION,
    TOKEN,
    api,
    api_env,
    duplicate,
    no_ambient_crm_settings,  # noqa: F401  (autouse here too)
    run,
    search,
    seen,
)
from vapi_bridge import create_app, tools
from vapi_bridge.context import current_context
from vapi_bridge.integrations.ghl import GhlClient
from vapi_bridge.tools.opportunities import Kept, place
from vapi_bridge.vapi.messages import ToolCall

MOVED = {"result": "The opportunity was moved to that stage."}
ALREADY = {"result": "The opportunity is already in that stage."}


@pytest.fixture
def api_app(crm):
    return create_app(api_env(crm))


def stage(app, stage_id, tool_call_id):
    return run(app, "update_stage", {"pipelineId": "p1", "stageId": stage_id}, tool_call_id)


def put(opportunity, stage_id):
    return api("PUT", f"/opportunities/{opportunity}", {"pipelineStageId": stage_id})


def test_a_second_update_stage_of_the_call_is_one_put(crm, api_app):
    contact = crm.add_contact(CALLER, LOCATION)
    opportunity = crm.add_opportunity(contact, "p1", "s0")
    assert stage(api_app, "s1", "t1") == MOVED
    assert seen(crm) == [duplicate(), search(contact), put(opportunity, "s1")]
    crm.requests.clear()
    assert stage(api_app, "s2", "t2") == MOVED
    assert seen(crm) == [put(opportunity, "s2")]  # no search
    assert crm.opportunities[opportunity]["pipelineStageId"] == "s2"


def test_the_stage_it_is_already_in_makes_no_request(crm, api_app):
    contact = crm.add_contact(CALLER, LOCATION)
    crm.add_opportunity(contact, "p1", "s0")
    stage(api_app, "s1", "t1")
    crm.requests.clear()
    assert stage(api_app, "s1", "t2") == ALREADY
    assert seen(crm) == []


def test_one_found_already_there_is_kept_too(crm, api_app):
    contact = crm.add_contact(CALLER, LOCATION)
    opportunity = crm.add_opportunity(contact, "p1", "s1")
    assert stage(api_app, "s1", "t1") == ALREADY
    crm.requests.clear()
    assert stage(api_app, "s2", "t2") == MOVED
    assert seen(crm) == [put(opportunity, "s2")]


def test_a_created_opportunity_is_kept(crm, api_app):
    contact = crm.add_contact(CALLER, LOCATION, firstName="Ana")
    assert stage(api_app, "s1", "t1") == {
        "result": "A new opportunity was created in that stage."}
    [created] = crm.opportunities
    crm.requests.clear()
    assert stage(api_app, "s2", "t2") == MOVED
    assert seen(crm) == [put(created, "s2")]
    assert stage(api_app, "s2", "t3") == ALREADY
    assert len(crm.opportunities) == 1 and crm.opportunities[created]["contactId"] == contact


@pytest.mark.parametrize("how", ["deleted", "403"])
def test_a_kept_opportunity_gone_is_searched_for_again_and_the_new_one_kept(crm, api_app, how):
    contact = crm.add_contact(CALLER, LOCATION)
    older = crm.add_opportunity(contact, "p1", "s0", status="lost")
    kept = crm.add_opportunity(contact, "p1", "s0")
    stage(api_app, "s1", "t1")
    if how == "deleted":
        del crm.opportunities[kept]
    else:
        crm.fail_next(1, 403)  # GoHighLevel's answer for a location the token cannot reach
        crm.opportunities[kept]["status"] = "lost"  # and the search now prefers the older one
        crm.opportunities[kept]["updatedAt"] = "2000-01-01T00:00:00.000Z"
    crm.requests.clear()
    assert stage(api_app, "s2", "t2") == MOVED
    assert seen(crm) == [put(kept, "s2"), search(contact), put(older, "s2")]
    assert crm.opportunities[older]["pipelineStageId"] == "s2"
    crm.requests.clear()
    assert stage(api_app, "s3", "t3") == MOVED
    assert seen(crm) == [put(older, "s3")]  # the new one kept


def test_a_refused_move_keeps_the_kept_opportunity(crm, api_app):
    contact = crm.add_contact(CALLER, LOCATION)
    opportunity = crm.add_opportunity(contact, "p1", "s0")
    stage(api_app, "s1", "t1")
    crm.fail_next(1, 422)  # not "gone": an error the assistant says, nothing forgotten
    assert "error" in stage(api_app, "s2", "t2")
    crm.requests.clear()
    assert stage(api_app, "s2", "t3") == MOVED
    assert seen(crm) == [put(opportunity, "s2")]


def test_another_call_or_pipeline_searches_again(crm, api_app):
    contact = crm.add_contact(CALLER, LOCATION)
    opportunity = crm.add_opportunity(contact, "p1", "s0")
    other = crm.add_opportunity(contact, "p2", "x0")
    stage(api_app, "s1", "t1")
    crm.requests.clear()
    answer = tool_call(api_app, "update_stage", {"pipelineId": "p1", "stageId": "s2"}, "t2",
                       id="c2")
    assert answer["result"] == MOVED["result"]
    assert seen(crm) == [duplicate(), search(contact), put(opportunity, "s2")]
    crm.requests.clear()
    assert run(api_app, "update_stage", {"pipelineId": "p2", "stageId": "x1"}, "t3") == MOVED
    assert seen(crm) == [search(contact, "p2"), put(other, "x1")]


# Two clients on one location: the same call id, contact and pipeline; only the client differs.
CLIENTS = [{"name": "North", "assistant_ids": ["a1"], "ghl_api_key": "pit-north",
            "ghl_location_id": LOCATION},
           {"name": "South", "assistant_ids": ["a2"], "ghl_api_key": "pit-south",
            "ghl_location_id": LOCATION}]


def test_another_client_with_the_same_call_id_does_not_reuse_it(crm, redis_url, prefix):
    app = create_app({"GHL_API_BASE_URL": crm.url, "WEBHOOK_TOKEN": WEBHOOK_TOKEN,
                      "REDIS_URL": redis_url, "STATE_STORAGE_PREFIX": prefix,
                      "CLIENTS_JSON": json.dumps(CLIENTS)})
    contact = crm.add_contact(CALLER, LOCATION)
    opportunity = crm.add_opportunity(contact, "p1", "s0")
    assert stage(app, "s1", "t1") == MOVED  # North's (assistant a1)
    crm.requests.clear()
    # The webhook refuses South a call North owns; even were it let through, South searches.
    with app.app_context():
        ctx = dataclasses.replace(current_context(), call_id="c1", customer_number=CALLER,
                                  client=app.config["SETTINGS"].clients.by_name("South"))
        answer = tools.run(ToolCall("t9", "update_stage", {"pipelineId": "p1",
                                                           "stageId": "s1"}), ctx)
    assert answer == ALREADY
    assert [(r.method, r.path, r.headers["Authorization"]) for r in crm.requests] == [
        ("GET", "/contacts/search/duplicate", "Bearer pit-south"),
        ("GET", "/opportunities/search", "Bearer pit-south")]
    assert crm.opportunities[opportunity]["pipelineStageId"] == "s1"


def test_never_backwards_judges_the_kept_stage(crm):
    """``order`` (the call-ended step's rule) against a kept stage: no request either way."""
    contact = crm.add_contact(CALLER, LOCATION)
    opportunity = crm.add_opportunity(contact, "p1", "s1")  # GoHighLevel's stage: not read
    ghl = GhlClient(crm.url, TOKEN, LOCATION, retries=0)
    order = ["s1", "s2", "s3"]
    kept = Kept(opportunity, "s3")
    assert place(ghl, contact, "p1", "s2", "x", order=order, kept=kept) == ("later", kept)
    assert place(ghl, contact, "p1", "s3", "x", order=order, kept=kept) == ("already", kept)
    assert crm.requests == []
    assert place(ghl, contact, "p1", "s3", "x", order=order, kept=Kept(opportunity, "s2")) == (
        "moved", kept)
    assert seen(crm) == [put(opportunity, "s3")]
