"""A call's own page (/calls/<callId>), its "Deliver again" button, and the status page's picture
of the last 24 hours: Flask's test client against the local GoHighLevel/Slack fakes."""

from __future__ import annotations

import json
import re

import pytest

from tests.test_admin import BACKENDS, DAILY_LIMIT_SPENT, TOKEN, basic, counts, csrf, sign_in
from tests.test_pipeline import PHONE, post, report
from tests.test_tenancy import CLIENTS, tool_calls
from vapi_bridge import create_app


def page(client, call_id: str = "call-1", **kwargs):
    return client.get(f"/calls/{call_id}", headers=basic(), **kwargs)


def text(response) -> str:
    return response.get_data(as_text=True)


def step_row(html: str, step: str) -> str:
    return re.search(rf'<tr id="step-{step}">.*?</tr>', html, re.S).group(0)


def deliver_again(client, call_id: str = "call-1"):
    token = csrf(text(page(client, call_id)))
    return client.post(f"/calls/{call_id}/deliver", data={"csrf_token": token},
                       headers=basic())


def test_the_status_page_links_each_call_to_its_page(make_app, integrations_env):
    app = make_app(integrations_env)
    post(app, report("call-1"))
    html = text(app.test_client().get("/", headers=basic()))
    assert '<a\n          href="/calls/call-1">call-1</a>' in html


@BACKENDS
def test_the_page_shows_the_call_with_the_callers_last_4_digits_only(make_app, backend_env,
                                                                     integrations_env):
    app = make_app(integrations_env, backend_env)
    assert post(app, report("call-1")).status_code == 200
    response = page(app.test_client())
    html = text(response)
    assert response.status_code == 200
    assert re.search(r'id="client">default<', html)
    assert '<dd id="caller">•••0123</dd>' in html
    assert PHONE not in html and "4155550123" not in html and "5550123" not in html
    assert "Booked a cleaning on Tuesday." in html  # the summary
    assert "2026-11-25 10:00 UTC" in html  # started
    assert "assistant-ended-call" in html
    assert ('href="https://app.gohighlevel.com/v2/location/loc-default/contacts/detail/'
            'ghl-contact-7"') in html
    assert "ok" in step_row(html, "note") and "no tags for this call" in step_row(html, "tags")
    assert 'id="deliver-again"' not in html  # nothing left to deliver
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_an_unknown_or_unusable_call_id_is_a_404_page(make_app):
    client = make_app().test_client()
    response = page(client, "no-such-call")
    assert response.status_code == 404 and 'id="not-found"' in text(response)
    for bad in ("a:b", "has%20space", "x" * 257, "tab%09"):
        assert page(client, bad).status_code == 404, bad
    no_admin = make_app(ADMIN_TOKEN=None).test_client()
    assert page(no_admin).status_code == 404  # without ADMIN_TOKEN the page does not exist


def test_the_page_and_its_button_need_the_same_sign_in_as_the_status_page(make_app,
                                                                          integrations_env, ghl):
    app = make_app(integrations_env)
    ghl.fail_next(1, *DAILY_LIMIT_SPENT)
    post(app, report("call-1"))
    client = app.test_client()
    assert client.get("/calls/call-1").status_code == 401
    assert client.get("/calls/call-1", headers=basic("wrong")).status_code == 401
    assert client.post("/calls/call-1/deliver").status_code == 401
    assert sign_in(client).status_code == 303
    html = text(client.get("/calls/call-1"))
    assert 'id="sign-out"' in html and 'id="deliver-again"' in html


def test_deliver_again_without_the_csrf_token_is_refused_and_delivers_nothing(
        make_app, integrations_env, ghl):
    app = make_app(integrations_env)
    ghl.fail_next(1, *DAILY_LIMIT_SPENT)
    post(app, report("call-1"))
    client = app.test_client()
    sign_in(client)
    for form in ({}, {"csrf_token": "forged"}):
        assert client.post("/calls/call-1/deliver", data=form).status_code == 400
    assert ghl.notes == [] and counts(app)["parked"] == 1


@BACKENDS
def test_deliver_again_runs_the_parked_and_dead_steps_through_the_outbox(make_app, backend_env,
                                                                         integrations_env, ghl):
    app = make_app(integrations_env, backend_env)
    ghl.fail_next(1, *DAILY_LIMIT_SPENT)  # the note parks
    post(app, report("call-1"))
    ghl.fail_next(1, 422)  # the note of call-2 dies
    post(app, report("call-2"))
    client = app.test_client()
    html = text(page(client))
    assert "parked" in step_row(html, "note") and "UTC" in step_row(html, "note")  # next try
    assert "429" in step_row(html, "note")  # last error
    assert "none: dead letter" in step_row(text(page(client, "call-2")), "note")

    response = deliver_again(client)
    assert response.status_code == 303 and response.headers["Location"] == "/calls/call-1"
    html = text(client.get("/calls/call-1", headers=basic()))
    assert "Delivered again: 1 delivered, 0 parked again, 0 dead" in html
    assert '<span class="status ok"' in step_row(html, "note")
    assert 'id="deliver-again"' not in html
    assert [note["contact_id"] for note in ghl.notes] == ["ghl-contact-7"]
    assert counts(app) == {"parked": 0, "dead": 1, "due": 0}  # call-2's job untouched

    again = deliver_again(client, "call-2")  # a dead letter: a new round, now
    assert again.status_code == 303
    assert len(ghl.notes) == 2 and counts(app) == {"parked": 0, "dead": 0, "due": 0}


def test_deliver_again_when_nothing_is_left_delivers_nothing_twice(make_app, integrations_env,
                                                                   ghl, slack):
    app = make_app(integrations_env)
    post(app, report("call-1"))
    client = app.test_client()
    assert 'id="deliver-again"' not in text(page(client))  # no button, but a forged click:
    token = csrf(text(client.get("/", headers=basic())))
    for _ in range(2):
        client.post("/calls/call-1/deliver", data={"csrf_token": token}, headers=basic())
        html = text(page(client))
        assert "Nothing to deliver again" in html
    assert len(ghl.notes) == 1 and len(slack.messages) == 1


def test_tool_calls_are_listed_with_name_outcome_and_time_never_their_arguments(
        make_app, integrations_env):
    app = make_app(integrations_env)
    secret = "Ana Núñez, ana@example.com"
    message = tool_calls("call-1", "asst-1", ("t1", "get_call_context", {"callId": "call-1"}),
                         ("t2", "no_such_tool", {"email": secret}))
    assert post(app, message).status_code == 200
    assert post(app, message).status_code == 200  # Vapi's repeat: logged once
    post(app, report("call-1"))
    html = text(page(app.test_client()))
    rows = re.search(r'<section id="tool-calls">.*?</section>', html, re.S).group(0)
    assert "Tool calls <small>(2)</small>" in rows
    assert re.search(r"UTC</td>\s*<td data-label=\"Tool\">get_call_context</td>\s*"
                     r"<td data-label=\"Outcome\"><span class=\"ok\">ok", rows)
    assert re.search(r"no_such_tool</td>\s*<td data-label=\"Outcome\"><span class=\"bad\">"
                     r"error", rows)
    assert secret not in html and "ana@example.com" not in html


def test_another_clients_tool_calls_never_reach_the_calls_page(integrations_env, redis_url,
                                                               prefix, ghl):
    app = create_app({**integrations_env, "REDIS_URL": redis_url, "STATE_STORAGE_PREFIX": prefix,
                      "CLIENTS_JSON": json.dumps(CLIENTS), "ADMIN_TOKEN": TOKEN})
    north = tool_calls("call-1", "asst-north", ("t1", "get_call_context", {}))
    assert post(app, north).status_code == 200
    south = tool_calls("call-1", "asst-south", ("t9", "get_call_context", {}),
                       ("t8", "add_note", {"note": "x"}))
    assert post(app, south).status_code == 409
    assert post(app, report("call-1", assistant_id="asst-north")).status_code == 200
    html = text(page(app.test_client()))
    assert re.search(r'id="client">North Dental<', html)
    assert "Tool calls <small>(1)</small>" in html and "add_note" not in html
    assert "loc-north/contacts/detail/ghl-contact-7" in html  # North's own location


def test_the_status_page_draws_the_last_24_hours(make_app, integrations_env, ghl):
    app = make_app(integrations_env)
    ghl.fail_next(1, *DAILY_LIMIT_SPENT)
    for call_id in ("call-1", "call-2", "call-3"):
        post(app, report(call_id))
    client = app.test_client()
    deliver_again(client)
    html = text(client.get("/", headers=basic()))
    svgs = re.findall(r'<svg class="chart".*?</svg>', html, re.S)
    assert len(svgs) == 2 and "<script" not in html
    assert re.search(r'id="calls-24h">3<', html)
    # 3 notes and 3 Slack messages (one note parked, then delivered again), 3 tags skipped.
    totals = dict(re.findall(r'id="steps-(\w+)-24h">(\d+)<', html))
    assert totals == {"ok": "6", "skipped": "3", "parked": "1", "dead": "0"}
    assert svgs[0].count("<rect") == 1 and ": 3 calls</title>" in svgs[0]
    assert 'viewBox="0 0 480 160"' in svgs[0]


def test_the_picture_is_not_drawn_when_the_store_is_down(make_app):
    down = {"REDIS_URL": "redis://127.0.0.1:1/0", "STATE_STORAGE_FALLBACK": "none"}
    response = make_app(down).test_client().get("/", headers=basic())
    assert response.status_code == 200 and 'id="last-24h"' not in text(response)


@pytest.mark.parametrize("path", ["/calls/call-1"])
def test_a_call_page_with_the_store_down_says_so(make_app, path):
    down = {"REDIS_URL": "redis://127.0.0.1:1/0", "STATE_STORAGE_FALLBACK": "none"}
    response = make_app(down).test_client().get(path, headers=basic())
    assert response.status_code == 503 and "state store is unavailable" in text(response)
