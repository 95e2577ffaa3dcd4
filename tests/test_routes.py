"""The original service's helper routes, done right: pull-metadata, slack/test, /health."""

from __future__ import annotations

import json

import pytest

from vapi_bridge import create_app

TOKEN = "route-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app(integrations_env):
    return create_app({**integrations_env, "WEBHOOK_TOKEN": TOKEN})


def test_pull_metadata_runs_the_pipeline_and_is_safe_to_repeat(app, vapi_api, ghl, slack):
    vapi_api.calls["call-9"] = {
        "id": "call-9", "assistantId": "asst-1", "endedReason": "customer-ended-call",
        "metadata": {"ghl": {"contactId": "c-9", "tags": ["pulled"]}},
        "analysis": {"summary": "Pulled summary."}, "customer": {"number": "+14155550100"}}
    client = app.test_client()
    first = client.post("/vapi/pull-metadata", json={"callId": "call-9"}, headers=AUTH)
    assert first.status_code == 200
    assert first.get_json() == {"callId": "call-9", "client": "default", "delivery": {
        "note": {"status": "ok", "attempts": 1, "last_error": None},
        "tags": {"status": "ok", "attempts": 1, "last_error": None},
        "slack": {"status": "ok", "attempts": 1, "last_error": None}}}
    again = client.post("/vapi/pull-metadata", json={"callId": "call-9"}, headers=AUTH)
    assert {s["status"] for s in again.get_json()["delivery"].values()} == {"ok"}
    assert len(ghl.notes) == 1 and len(ghl.tags) == 1 and len(slack.messages) == 1
    assert "Pulled summary." in ghl.notes[0]["body"]
    assert len(vapi_api.requests) == 2  # one read per pull, none from the pipeline itself


@pytest.mark.parametrize(("body", "status", "error"), [
    ({}, 400, "invalid_payload"), ({"callId": ""}, 400, "invalid_payload"),
    ({"callId": "a:b"}, 400, "invalid_payload"), ("not json", 400, "invalid_json"),
    ({"callId": "unknown-call"}, 404, "call_not_found"),
])
def test_pull_metadata_errors(app, body, status, error):
    data = body if isinstance(body, str) else json.dumps(body)
    response = app.test_client().post("/vapi/pull-metadata", data=data, headers=AUTH,
                                      content_type="application/json")
    assert response.status_code == status
    assert response.get_json()["error"] == error


def test_pull_metadata_needs_auth_and_the_vapi_key(app, integrations_env):
    assert app.test_client().post("/vapi/pull-metadata", json={"callId": "c"}).status_code == 401
    keyless = create_app({**integrations_env, "VAPI_API_KEY": None, "WEBHOOK_TOKEN": TOKEN})
    response = keyless.test_client().post("/vapi/pull-metadata", json={"callId": "c"},
                                          headers=AUTH)
    assert response.status_code == 503
    assert response.get_json()["error"] == "vapi_api_not_configured"


def test_pull_metadata_when_vapi_is_down(app, vapi_api):
    vapi_api.stop()
    response = app.test_client().post("/vapi/pull-metadata", json={"callId": "c"}, headers=AUTH)
    assert response.status_code == 502
    assert response.get_json()["error"] == "vapi_unavailable"


def test_slack_test(app, integrations_env, slack):
    client = app.test_client()
    ok = client.post("/slack/test", headers=AUTH)
    assert ok.status_code == 200
    assert ok.get_json() == {"ok": True, "client": "default", "team": "Agency",
                             "user": "vapi-bridge"}
    assert client.post("/slack/test").status_code == 401
    assert client.post("/slack/test?client=nobody", headers=AUTH).status_code == 404
    broken = create_app({**integrations_env, "SLACK_BOT_TOKEN": "bad-token",
                         "WEBHOOK_TOKEN": TOKEN}).test_client()
    answer = broken.post("/slack/test", headers=AUTH)
    assert answer.status_code == 502 and answer.get_json()["error"] == "slack: invalid_auth"
    hook = create_app({**integrations_env, "SLACK_BOT_TOKEN": None, "SLACK_CHANNEL_ID": None,
                       "SLACK_WEBHOOK_URL": slack.webhook_url, "WEBHOOK_TOKEN": TOKEN})
    assert hook.test_client().post("/slack/test", headers=AUTH).get_json()["error"] == (
        "slack_not_testable")


def test_health_lists_integrations_as_booleans(integrations_env):
    clients = [{"name": "North", "assistant_ids": ["a"], "ghl_api_key": "pit-north",
                "ghl_location_id": "loc"}]
    admin_token = "admin-token-for-health"
    app = create_app({**integrations_env, "CLIENTS_JSON": json.dumps(clients),
                      "ADMIN_TOKEN": admin_token})
    body = app.test_client().get(
        "/health", headers={"Authorization": f"Bearer {admin_token}"}).get_data(as_text=True)
    assert json.loads(body)["integrations"] == {
        "default": {"ghl": True, "slack": True, "vapi_api": True},
        "North": {"ghl": True, "slack": False, "vapi_api": True},  # no channel
    }
    for secret in ("pit-north", "pit-default", "xoxb-default", "vapi-test-key"):
        assert secret not in body


ACTION_ROUTES = [("/ghl/outbound-call", {"contact_id": "c-1", "phone": "+14155550100"}),
                 ("/vapi/pull-metadata", {"callId": "call-1"}), ("/slack/test", {})]


@pytest.mark.parametrize(("path", "body"), ACTION_ROUTES)
@pytest.mark.parametrize("env", ["try-out", "open webhook allowed"])
def test_routes_that_act_never_run_without_a_secret(integrations_env, vapi_api, slack, path,
                                                    body, env):
    config = ({} if env == "try-out" else
              {**integrations_env, "WEBHOOK_TOKEN": None, "ALLOW_UNAUTHENTICATED_WEBHOOKS": "true"})
    app = create_app(config)
    response = app.test_client().post(path, json=body, headers=AUTH)
    assert response.status_code == 503
    assert response.get_json() == {"error": "auth_not_configured", "message": (
        "Set WEBHOOK_TOKEN or VAPI_WEBHOOK_HMAC_SECRET (or a client's webhook_token or"
        f" hmac_secret) to enable {path}.")}
    assert vapi_api.requests == [] and slack.requests == []
    # The webhook itself stays open there: the try-out, or the operator's choice.
    assert app.test_client().post("/vapi/webhook", json={"message": {
        "type": "speech-update"}}).status_code == 200


@pytest.mark.parametrize(("path", "body"), ACTION_ROUTES)
def test_routes_that_act_need_the_token(app, path, body):
    response = app.test_client().post(path, json=body)
    assert (response.status_code, response.get_json()) == (401, {"error": "unauthorized"})
