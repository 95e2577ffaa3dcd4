"""/health and the JSON error pages, per backend, including a store that is down."""

from __future__ import annotations

import base64
from datetime import datetime

import pytest

from tests.conftest import WEBHOOK_TOKEN
from vapi_bridge import __version__, create_app


def test_health_reports_each_backend(backend_env):
    client = create_app(backend_env).test_client()
    response = client.get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["version"] == __version__
    assert datetime.fromisoformat(body["timestamp"]).tzinfo is not None
    storage = body["storage"]
    assert storage["available"] is True and storage["latency_ms"] >= 0
    assert storage["backend"] == create_app(backend_env).extensions["state_storage"].backend.name
    assert set(storage) >= {"type", "backend", "persistent", "available", "latency_ms",
                            "fallback", "degraded"}
    # A persistent store has the in-process fallback standing by; the dict needs none.
    assert storage["fallback"] == ("memory" if storage["persistent"] else None)
    assert storage["degraded"] is False


@pytest.mark.parametrize("env", [
    {"REDIS_URL": "redis://127.0.0.1:1/0"},
    {"KV_REST_API_URL": "http://127.0.0.1:1", "KV_REST_API_TOKEN": "t"},
], ids=["redis", "kv-rest"])
def test_store_down_at_start_up_still_serves_a_degraded_health(env):
    app = create_app(env)  # does not raise: the store is only reached when used
    response = app.test_client().get("/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "degraded"
    assert body["storage"]["available"] is False
    assert body["storage"]["latency_ms"] is None
    assert body["storage"]["backend"] == app.extensions["state_storage"].backend.name
    assert (body["storage"]["fallback"], body["storage"]["degraded"]) == ("memory", True)


def test_without_the_fallback_a_store_down_is_degraded_too():
    app = create_app({"REDIS_URL": "redis://127.0.0.1:1/0", "STATE_STORAGE_FALLBACK": "none"})
    response = app.test_client().get("/health")
    assert response.status_code == 503
    storage = response.get_json()["storage"]
    assert (storage["available"], storage["fallback"], storage["degraded"]) == (False, None, False)


@pytest.mark.parametrize("backend_env", ["kv-rest"], indirect=True)
def test_rest_store_with_a_wrong_token_is_degraded(backend_env):
    app = create_app({**backend_env, "KV_REST_API_TOKEN": "wrong"})
    assert app.test_client().get("/health").status_code == 503


def test_errors_are_json():
    client = create_app().test_client()
    missing = client.get("/no/such/path")
    assert missing.status_code == 404
    assert missing.get_json()["error"] == "not_found"
    wrong_method = client.post("/health")
    assert wrong_method.status_code == 405
    assert wrong_method.get_json()["error"] == "method_not_allowed"
    assert "GET" in wrong_method.headers["Allow"]


def test_our_own_faults_are_json_500(caplog):
    app = create_app()

    @app.get("/boom")
    def boom():
        raise RuntimeError("kaput")

    response = app.test_client().get("/boom", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal_error", "requestId": "req-42"}
    assert "kaput" not in response.get_data(as_text=True)
    assert "Unhandled error on GET /boom requestId=req-42" in caplog.text


# What /health tells whom
ADMIN_TOKEN = "admin-token-for-health"
NORTH = ('[{"name": "North", "assistant_ids": ["a1"], "ghl_api_key": "pit-north",'
         ' "ghl_location_id": "loc-north"}]')
PUBLIC = {"status", "version", "timestamp", "auth", "storage"}


def bearer(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_health_without_credentials_names_no_client():
    client = create_app({"CLIENTS_JSON": NORTH, "ADMIN_TOKEN": ADMIN_TOKEN,
                         "WEBHOOK_TOKEN": WEBHOOK_TOKEN}).test_client()
    response = client.get("/health")
    assert response.status_code == 200
    assert set(response.get_json()) == PUBLIC
    assert "North" not in response.get_data(as_text=True)
    # Without ADMIN_TOKEN there is nothing to show it to: a bearer changes nothing.
    unset = create_app({"CLIENTS_JSON": NORTH, "WEBHOOK_TOKEN": WEBHOOK_TOKEN}).test_client()
    assert set(unset.get("/health", headers=bearer()).get_json()) == PUBLIC


def test_health_with_the_admin_token_lists_each_clients_integrations():
    client = create_app({"CLIENTS_JSON": NORTH, "ADMIN_TOKEN": ADMIN_TOKEN,
                         "WEBHOOK_TOKEN": WEBHOOK_TOKEN}).test_client()
    body = client.get("/health", headers=bearer()).get_json()
    assert set(body) == PUBLIC | {"integrations"}
    assert body["integrations"] == {
        "default": {"ghl": False, "slack": False, "vapi_api": False},
        "North": {"ghl": True, "slack": False, "vapi_api": False},
    }
    assert "pit-north" not in str(body)
    for wrong in (bearer("nope"), bearer(ADMIN_TOKEN + "x"), bearer(""),
                  {"Authorization": f"Basic {ADMIN_TOKEN}"}):
        response = client.get("/health", headers=wrong)
        assert "integrations" not in response.get_json() and "North" not in response.text
    assert client.get("/health", headers=bearer("nope")).status_code == 401


@pytest.mark.parametrize("backend_env", ["memory", "redis"], indirect=True)
def test_health_bearer_guesses_count_as_failed_sign_ins(backend_env, prefix):
    """Else /health would be an unlimited oracle for ADMIN_TOKEN."""
    env = {**backend_env, "ADMIN_TOKEN": ADMIN_TOKEN, "STATE_STORAGE_PREFIX": prefix}
    app = create_app(env)
    client = app.test_client()
    for _ in range(10):
        assert client.get("/health", headers=bearer("guess")).status_code == 401
    refused = client.get("/health", headers=bearer())  # the right token: not compared now
    assert refused.status_code == 429
    assert 295 <= int(refused.headers["Retry-After"]) <= 300
    assert refused.get_json()["error"] == "too_many_attempts"
    assert "integrations" not in refused.get_json()
    # The status page shares the count; on Redis, another worker's too.
    worker = create_app(env) if "REDIS_URL" in backend_env else app
    page = worker.test_client().get("/", headers={
        "Authorization": "Basic " + base64.b64encode(f"x:{ADMIN_TOKEN}".encode()).decode()})
    assert page.status_code == 429
    assert client.get("/health").status_code == 200  # without credentials: still open
