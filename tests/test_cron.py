"""``/cron/retry``: Vercel cron's bearer secret, one bounded pass, its counts."""

from __future__ import annotations

import time

import pytest

from tests.test_cli import DAILY_LIMIT, closed_port_url, park_note
from tests.test_pipeline import delivery, post, report
from vapi_bridge import create_app

SECRET = "cron-secret-0123456789"
AUTH = {"Authorization": f"Bearer {SECRET}"}


@pytest.fixture
def bridge(integrations_env):
    def make(**env):
        return create_app({**integrations_env, "RETRY_BASE_DELAY_SECONDS": "0.01", **env})

    return make


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_without_cron_secret_nothing_runs(bridge, ghl, method):
    app = bridge()
    park_note(app, ghl)
    time.sleep(0.05)  # due
    response = app.test_client().open("/cron/retry", method=method, headers=AUTH)
    assert response.status_code == 503
    assert response.get_json() == {"error": "cron_not_configured",
                                   "message": "Set CRON_SECRET to enable /cron/retry."}
    assert ghl.notes == []


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": SECRET},
    {"Authorization": f"Bearer {SECRET}x"}, {"Authorization": f"Basic {SECRET}"},
])
def test_wrong_or_missing_bearer_is_401(bridge, ghl, headers):
    app = bridge(CRON_SECRET=SECRET)
    park_note(app, ghl)
    time.sleep(0.05)
    for method in ("GET", "POST"):
        response = app.test_client().open("/cron/retry", method=method, headers=headers)
        assert response.status_code == 401
        assert response.get_json() == {"error": "unauthorized"}
    assert ghl.notes == []


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_right_bearer_drains_what_is_due(bridge, ghl, method):
    app = bridge(CRON_SECRET=SECRET)
    park_note(app, ghl)
    time.sleep(0.05)
    response = app.test_client().open("/cron/retry", method=method, headers=AUTH)
    assert response.status_code == 200
    assert response.get_json() == {"delivered": 1, "parked": 0, "dead": 0, "busy": 0,
                                   "vanished": 0, "outbox": {"parked": 0, "dead": 0, "due": 0}}
    assert len(ghl.notes) == 1 and delivery(app)["note"]["status"] == "ok"
    again = app.test_client().get("/cron/retry", headers=AUTH).get_json()
    assert again["delivered"] == 0 and len(ghl.notes) == 1


def test_a_job_failing_again_is_parked_again(bridge, ghl):
    app = bridge(CRON_SECRET=SECRET)
    park_note(app, ghl)
    time.sleep(0.05)
    ghl.fail_next(1, 429, DAILY_LIMIT)
    body = app.test_client().get("/cron/retry", headers=AUTH).get_json()
    assert (body["delivered"], body["parked"], body["outbox"]["parked"]) == (0, 1, 1)


def test_the_pass_stops_starting_jobs_at_the_deadline(bridge, ghl, redis_url, prefix):
    store = {"REDIS_URL": redis_url, "STATE_STORAGE_PREFIX": prefix}
    parker = bridge(**store)
    ghl.fail_next(2, 429, DAILY_LIMIT)
    post(parker, report(call_id="call-1"))
    post(parker, report(call_id="call-2"))
    time.sleep(0.05)
    ghl.delay = 0.5  # the first job outlasts the cron app's whole budget
    cron = bridge(CRON_SECRET=SECRET, PIPELINE_DEADLINE_SECONDS="0.2", **store)
    body = cron.test_client().get("/cron/retry", headers=AUTH).get_json()
    assert (body["delivered"], body["outbox"]["due"]) == (1, 1)
    assert len(ghl.notes) == 1


def test_store_down_is_503_not_500(bridge):
    app = bridge(CRON_SECRET=SECRET, REDIS_URL=closed_port_url())
    response = app.test_client().get("/cron/retry", headers=AUTH)
    assert response.status_code == 503
    assert response.get_json()["error"] == "storage_unavailable"
