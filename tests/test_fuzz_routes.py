"""Every POST route gets the webhook's treatment: any body, query or content type is answered
below 500 with JSON (a redirect aside). The routes come from ``app.url_map``, so a new one is
covered without touching this file; the bodies reuse the webhook fuzzing's strategies.

The cases before the fuzz test are the 500s it was written for (issue 12, item 6).
"""

from __future__ import annotations

import base64
import json
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.vapi.test_fuzz import CONTENT_TYPES, ids, json_bodies, message_bodies, raw_bodies
from vapi_bridge import create_app

TOKEN = "fuzz-webhook-token"
CRON_SECRET = "fuzz-cron-secret-0123456789"
ADMIN_TOKEN = "fuzz-admin-token-0123456789"
KNOWN_POST_ROUTES = {"/vapi/webhook", "/vapi/pull-metadata", "/slack/test", "/ghl/outbound-call",
                     "/cron/retry", "/login", "/logout", "/admin/retry",
                     "/calls/<call_id>/deliver"}
DEPTH = 100_000
STATUS_PAGES = ("admin.", "calls.")  # endpoints behind ADMIN_TOKEN (the status and call pages)


@pytest.fixture
def app(vapi_api):
    """Vapi's API is a local fake, so /ghl/outbound-call and pull-metadata go all the way (it
    knows the two ended calls near_pull names: reaching them needs no earlier outbound call)."""
    for call_id in ("call-1", "call-2"):  # the ids near_pull draws
        vapi_api.calls[call_id] = {"id": call_id, "status": "ended", "assistantId": "asst-1",
                                   "endedReason": "customer-ended-call"}
    return create_app({"WEBHOOK_TOKEN": TOKEN, "CRON_SECRET": CRON_SECRET,
                       "ADMIN_TOKEN": ADMIN_TOKEN, "VAPI_API_BASE_URL": vapi_api.url,
                       "VAPI_API_KEY": vapi_api.api_key, "VAPI_ASSISTANT_ID": "asst-1",
                       "VAPI_PHONE_NUMBER_ID": "pn-1"})


def post_routes(app) -> dict[str, str]:
    """Every route that takes a POST: {path: endpoint}."""
    return {rule.rule: rule.endpoint for rule in app.url_map.iter_rules()
            if "POST" in (rule.methods or ())}


def credentials(endpoint: str) -> dict[str, str]:
    """What each route needs: the status page takes Basic, the rest the webhook token
    (and /cron/retry its Bearer secret)."""
    if endpoint.startswith(STATUS_PAGES):
        basic = base64.b64encode(f"admin:{ADMIN_TOKEN}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}
    return {"X-Vapi-Secret": TOKEN, "Authorization": f"Bearer {CRON_SECRET}"}


def check_answer(response) -> None:
    body = response.get_data(as_text=True)
    assert response.status_code < 500, (response.status_code, body)
    if 300 <= response.status_code < 400:
        return
    assert response.mimetype == "application/json", (response.status_code, body)
    answer = json.loads(body)
    assert isinstance(answer, dict)
    if response.status_code >= 400:
        assert isinstance(answer.get("error"), str), answer


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


OUTBOUND = {"contact_id": "ghl-c-1", "phone": "+14155550123"}


# The 500s of issue 12, item 6
@pytest.mark.parametrize("request_id", ["r" * 257, "run 7", "run\t7", "a:b"])
def test_outbound_call_with_an_unusable_request_id_is_400(app, vapi_api, request_id):
    response = app.test_client().post("/ghl/outbound-call", json={
        **OUTBOUND, "requestId": request_id}, headers=credentials("outbound"))
    check_answer(response)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request_id"
    assert vapi_api.created == []


@pytest.mark.parametrize("path", ["/ghl/outbound-call", "/vapi/pull-metadata", "/vapi/webhook"])
@pytest.mark.parametrize("body", [deep(DEPTH), b'{"a":' * DEPTH + b"1" + b"}" * DEPTH],
                         ids=["array", "object"])
def test_json_nested_100000_deep_is_400_invalid_json(app, path, body):
    response = app.test_client().post(path, data=body, content_type="application/json",
                                      headers=credentials("webhooks"))
    check_answer(response)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_json"


# The fuzz test
outbound_fields = st.sampled_from(["contact_id", "contactId", "id", "phone", "phone_number",
                                   "requestId", "client", "location_id", "assistantId",
                                   "phoneNumberId", "first_name", "email", "customData",
                                   "location", "callId", "dry_run"])
field_values = ids | st.sampled_from(["+14155550123", "020 7946 0018", "default", "1"]) \
    | st.integers() | st.floats() | st.none() | st.booleans() | st.dictionaries(
        st.sampled_from(["id", "contact_id", "phone"]), ids, max_size=2)
route_json = st.dictionaries(outbound_fields, field_values, max_size=6).map(
    lambda value: json.dumps(value).encode())
near_outbound = st.fixed_dictionaries(  # a contact GoHighLevel could send, give or take
    {"contact_id": ids | st.just("ghl-c-1"), "phone": st.just("+14155550123") | field_values},
    optional={"requestId": ids, "client": st.just("default") | ids, "customData": field_values,
              "first_name": field_values, "location": field_values},
).map(lambda value: json.dumps(value).encode())
near_pull = st.fixed_dictionaries({"callId": ids | st.sampled_from(["call-1", "call-2"])}).map(
    lambda value: json.dumps(value).encode())
deep_bodies = st.builds(lambda depth, opener: opener * depth + b"1" + (b"]" if opener == b"["
                                                                       else b"}") * depth,
                        st.integers(1, DEPTH), st.sampled_from([b"[", b'{"a":']))
bodies = (raw_bodies | json_bodies | message_bodies | route_json | near_outbound | near_pull
          | deep_bodies)
queries = st.dictionaries(outbound_fields | st.sampled_from(["token", "client", "dead"]),
                          ids | st.text(max_size=10), max_size=3)
content_types = st.sampled_from([*CONTENT_TYPES, "application/json; charset=latin-1",
                                 "text/html", "application/octet-stream"])


# Each route also gets bodies near what it acts on, so some examples get past its checks.
signed_in = st.sampled_from([True, True, True, False])
NEAR = {"/ghl/outbound-call": near_outbound, "/vapi/pull-metadata": near_pull,
        "/vapi/webhook": message_bodies}


@st.composite
def route_requests(draw, routes: dict[str, str]) -> tuple[str, bytes, dict, str | None, bool]:
    path = draw(st.sampled_from(sorted(routes)))
    body = draw(NEAR.get(path, bodies) | bodies)
    content_type = draw(st.just("application/json") | content_types)
    return path, body, draw(st.just({}) | queries), content_type, draw(signed_in)


def test_no_post_route_answers_5xx_or_non_json(app):
    routes = post_routes(app)
    assert set(routes) >= KNOWN_POST_ROUTES, routes  # the enumeration finds them all
    client = app.test_client()
    statuses: Counter = Counter()

    @settings(max_examples=500, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(request=route_requests(routes))
    def post_anything(request):
        path, body, query, content_type, authenticated = request
        # Signed out, the status page answers people with its HTML sign-in form.
        signed = authenticated or routes[path].startswith(STATUS_PAGES)
        response = client.post(path, data=body, query_string=query, content_type=content_type,
                               headers=credentials(routes[path]) if signed else {})
        check_answer(response)
        statuses[(path, response.status_code)] += 1

    post_anything()
    print(dict(sorted(statuses.items())))
    # The fuzzing got past the checks of the routes that act, not only refused at the door.
    for path in NEAR:
        assert any(status < 300 for (seen, status) in statuses if seen == path), (path, statuses)
