"""Who may call the Server URL: token (three ways), HMAC (Vapi's credential), both, neither."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import time

import pytest
from werkzeug.test import EnvironBuilder

from vapi_bridge import create_app

TOKEN = "tok-3f9a1c"
SECRET = "hmac-secret-77e2"
BODY = json.dumps({"message": {"type": "speech-update", "status": "started"}}).encode()


def post(app, body=BODY, headers=None, query=""):
    return app.test_client().post(f"/vapi/webhook{query}", data=body, headers=headers or {},
                                  content_type="application/json")


def sign(body: bytes, timestamp: str | None, algorithm="sha256", secret=SECRET) -> bytes:
    signed = body if timestamp is None else timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), signed, algorithm).digest()


@pytest.fixture
def token_app():
    return create_app({"WEBHOOK_TOKEN": TOKEN})


@pytest.fixture
def hmac_app():
    return create_app({"VAPI_WEBHOOK_HMAC_SECRET": SECRET})


@pytest.mark.parametrize(("headers", "query"), [
    ({"X-Vapi-Secret": TOKEN}, ""),
    ({"Authorization": f"Bearer {TOKEN}"}, ""),
    ({"Authorization": f"bearer {TOKEN}"}, ""),
    ({}, f"?token={TOKEN}"),
    ({"X-Vapi-Secret": "", "Authorization": f"Bearer {TOKEN}"}, ""),  # Vapi's empty header
])
def test_token_is_accepted_three_ways(token_app, headers, query):
    response = post(token_app, headers=headers, query=query)
    assert response.status_code == 200
    assert response.get_json() == {"status": "ignored"}


@pytest.mark.parametrize(("headers", "query", "reason"), [
    ({}, "", "token: none offered"),
    ({"X-Vapi-Secret": "tok-3f9a1d"}, "", "token: wrong token"),
    ({"Authorization": f"Basic {TOKEN}"}, "", "token: none offered"),
    ({"Authorization": "Bearer "}, "", "token: none offered"),
    ({}, "?token=tok", "token: wrong token"),
])
def test_bad_or_missing_token_is_401_and_the_log_says_why(token_app, caplog, headers, query,
                                                          reason):
    caplog.set_level(logging.INFO)
    response = post(token_app, headers=headers, query=query)
    assert response.status_code == 401
    assert response.get_json() == {"error": "unauthorized"}
    assert reason in caplog.text
    assert TOKEN not in caplog.text and "tok-3f9a1d" not in caplog.text


def test_auth_is_checked_before_the_body_is_parsed(token_app):
    response = post(token_app, body=b"{not json")
    assert response.status_code == 401


def _hmac_headers(body=BODY, timestamp=None, encode="hex", prefix="", algorithm="sha256"):
    timestamp = str(int(time.time())) if timestamp is None else timestamp
    digest = sign(body, timestamp, algorithm)
    signature = digest.hex() if encode == "hex" else base64.b64encode(digest).decode()
    return {"x-signature": prefix + signature, "x-timestamp": timestamp}


@pytest.mark.parametrize("variant", [
    {}, {"encode": "base64"}, {"prefix": "sha256="},
    {"milliseconds": True},
])
def test_hmac_signature_is_accepted(hmac_app, variant):
    variant = dict(variant)
    if variant.pop("milliseconds", False):  # made now, not at collection: the window is 300 s
        variant["timestamp"] = str(int(time.time() * 1000))
    assert post(hmac_app, headers=_hmac_headers(**variant)).status_code == 200


def test_hex_signature_in_capitals_is_accepted(hmac_app):
    headers = _hmac_headers()
    headers["x-signature"] = headers["x-signature"].upper()
    assert post(hmac_app, headers=headers).status_code == 200


# Headers are built when the test runs (lambdas): a timestamp made at collection time would
# leave the 300 s window on a long run and change the reason.
@pytest.mark.parametrize(("headers", "reason"), [
    (lambda: {}, "hmac: no x-signature header"),
    (lambda: {"x-signature": "00" * 32}, "hmac: missing or malformed x-timestamp header"),
    (lambda: {"x-signature": "00" * 32, "x-timestamp": "yesterday"},
     "hmac: missing or malformed x-timestamp header"),
    (lambda: _hmac_headers(timestamp=str(int(time.time()) - 301)),
     "hmac: timestamp outside the 300s"),
    (lambda: _hmac_headers(timestamp=str(int(time.time() * 1000) + 3_600_000)),
     "outside the 300s window"),
    (lambda: {**_hmac_headers(), "x-signature": "not-a-signature"}, "hmac: signature mismatch"),
    (lambda: _hmac_headers(body=b'{"message": {"type": "hang"}}'), "hmac: signature mismatch"),
    (lambda: _hmac_headers(algorithm="sha512"), "hmac: signature mismatch"),
])
def test_bad_hmac_is_401_and_never_logs_the_signature(hmac_app, caplog, headers, reason):
    headers = headers()
    caplog.set_level(logging.INFO)
    response = post(hmac_app, headers=headers)
    assert response.status_code == 401
    assert reason in caplog.text
    if headers.get("x-signature"):
        assert headers["x-signature"] not in caplog.text
    assert SECRET not in caplog.text


def test_tampered_body_fails(hmac_app):
    headers = _hmac_headers()
    assert post(hmac_app, body=BODY + b" ", headers=headers).status_code == 401


@pytest.mark.parametrize("algorithm", ["sha512", "sha1"])
def test_other_algorithms_and_custom_headers(algorithm):
    app = create_app({"VAPI_WEBHOOK_HMAC_SECRET": SECRET, "VAPI_WEBHOOK_HMAC_ALGORITHM": algorithm,
                      "VAPI_WEBHOOK_HMAC_HEADER": "x-vapi-signature",
                      "VAPI_WEBHOOK_HMAC_TIMESTAMP_HEADER": "x-vapi-ts"})
    timestamp = str(int(time.time()))
    signature = sign(BODY, timestamp, algorithm).hex()
    good = {"x-vapi-signature": f"{algorithm}={signature}", "x-vapi-ts": timestamp}
    assert post(app, headers=good).status_code == 200
    default_headers = {"x-signature": signature, "x-timestamp": timestamp}
    assert post(app, headers=default_headers).status_code == 401


def test_empty_timestamp_header_setting_signs_the_body_alone():
    # trigger.dev's Vapi guide: header x-vapi-signature, no timestamp, HMAC of the body.
    app = create_app({"VAPI_WEBHOOK_HMAC_SECRET": SECRET,
                      "VAPI_WEBHOOK_HMAC_HEADER": "x-vapi-signature",
                      "VAPI_WEBHOOK_HMAC_TIMESTAMP_HEADER": ""})
    signature = sign(BODY, None).hex()
    assert post(app, headers={"x-vapi-signature": signature}).status_code == 200
    assert post(app, headers={"x-vapi-signature": "0" * 64}).status_code == 401


def test_tolerance_is_configurable():
    app = create_app({"VAPI_WEBHOOK_HMAC_SECRET": SECRET, "VAPI_WEBHOOK_HMAC_TOLERANCE": "5"})
    assert post(app, headers=_hmac_headers(timestamp=str(int(time.time()) - 10))).status_code == 401
    assert post(app, headers=_hmac_headers(timestamp=str(int(time.time()) - 2))).status_code == 200


def test_with_both_either_passes():
    app = create_app({"WEBHOOK_TOKEN": TOKEN, "VAPI_WEBHOOK_HMAC_SECRET": SECRET})
    assert post(app, headers={"X-Vapi-Secret": TOKEN}).status_code == 200
    assert post(app, headers=_hmac_headers()).status_code == 200
    assert post(app, headers={"X-Vapi-Secret": "nope"}).status_code == 401


@pytest.mark.parametrize(("config", "modes"), [
    ({}, []),
    ({"WEBHOOK_TOKEN": TOKEN}, ["token"]),
    ({"VAPI_WEBHOOK_HMAC_SECRET": SECRET}, ["hmac"]),
    ({"WEBHOOK_TOKEN": TOKEN, "VAPI_WEBHOOK_HMAC_SECRET": SECRET}, ["token", "hmac"]),
])
def test_health_lists_the_modes_never_the_secrets(config, modes):
    response = create_app(config).test_client().get("/health")
    assert response.get_json()["auth"] == modes
    text = response.get_data(as_text=True)
    assert TOKEN not in text and SECRET not in text


def test_no_auth_accepts_and_warns_at_start_up(caplog):
    caplog.set_level(logging.WARNING)
    app = create_app({})
    assert "Neither WEBHOOK_TOKEN nor VAPI_WEBHOOK_HMAC_SECRET is set" in caplog.text
    assert post(app).status_code == 200


def test_bad_algorithm_stops_start_up():
    from vapi_bridge.config import ConfigError

    with pytest.raises(ConfigError, match="VAPI_WEBHOOK_HMAC_ALGORITHM must be one of"):
        create_app({"VAPI_WEBHOOK_HMAC_ALGORITHM": "md5"})


@pytest.mark.parametrize("timestamp", ["nan", "NaN", "inf", "-inf", "1e400", "-1e400"])
def test_non_finite_timestamp_is_refused(hmac_app, caplog, timestamp):
    caplog.set_level(logging.INFO)
    headers = {"x-signature": sign(BODY, timestamp).hex(), "x-timestamp": timestamp}
    assert post(hmac_app, headers=headers).status_code == 401
    assert "hmac: missing or malformed x-timestamp header" in caplog.text


# A signed request replayed: refused, on every backend, by one SET NX keyed by a hash.

@pytest.mark.parametrize("backend_env", ["memory", "redis"], indirect=True)
def test_a_replayed_signature_is_refused(backend_env, prefix, caplog):
    caplog.set_level(logging.INFO)
    app = create_app({**backend_env, "STATE_STORAGE_PREFIX": prefix,
                      "VAPI_WEBHOOK_HMAC_SECRET": SECRET})
    headers = _hmac_headers()
    assert post(app, headers=headers).status_code == 200
    again = post(app, headers=headers)
    assert again.status_code == 401
    assert again.get_json() == {"error": "replayed"}
    assert "check=hmac: replayed" in caplog.text
    assert headers["x-signature"] not in caplog.text
    assert post(app, headers=_hmac_headers(timestamp=str(int(time.time()) - 1))).status_code == 200


def test_the_replay_mark_holds_a_hash_for_the_window_and_only_after_the_signature_passed(
        redis_url, redis_client, prefix):
    app = create_app({"REDIS_URL": redis_url, "STATE_STORAGE_PREFIX": prefix,
                      "VAPI_WEBHOOK_HMAC_SECRET": SECRET, "VAPI_WEBHOOK_HMAC_TOLERANCE": "120"})
    forged = {**_hmac_headers(), "x-signature": "ab" * 32}
    assert post(app, headers=forged).status_code == 401
    assert list(redis_client.scan_iter(f"{prefix}:*")) == []  # a bad signature marks nothing
    headers = _hmac_headers()
    assert post(app, headers=headers).status_code == 200
    [key] = redis_client.scan_iter(f"{prefix}:*")
    signature = bytes.fromhex(headers["x-signature"])
    assert key == f"{prefix}:signature:{hashlib.sha256(signature).hexdigest()}"
    assert headers["x-signature"] not in key + redis_client.get(key)
    assert 110 < redis_client.ttl(key) <= 120


def test_the_token_path_marks_nothing(redis_url, redis_client, prefix):
    app = create_app({"REDIS_URL": redis_url, "STATE_STORAGE_PREFIX": prefix,
                      "WEBHOOK_TOKEN": TOKEN, "VAPI_WEBHOOK_HMAC_SECRET": SECRET})
    for _ in range(2):
        assert post(app, headers={"X-Vapi-Secret": TOKEN}).status_code == 200
    assert list(redis_client.scan_iter(f"{prefix}:*")) == []


# Refused before the body is read: the headers alone decide when nothing else could pass.

def call_wsgi(app, headers, query=""):
    environ = EnvironBuilder(path="/vapi/webhook", method="POST", query_string=query,
                             headers=headers, data=BODY,
                             content_type="application/json").get_environ()
    body = environ["wsgi.input"] = io.BytesIO(BODY)
    statuses = []
    answer = b"".join(app(environ, lambda status, _headers, *_: statuses.append(status)))
    return int(statuses[0].split()[0]), json.loads(answer), body.tell()  # bytes read


STALE = str(int(time.time()) - 3600)
CLIENT_TOKEN = json.dumps([{"name": "North", "assistant_ids": ["asst-n"],
                            "webhook_token": "north-token"}])


@pytest.mark.parametrize(("config", "headers"), [
    ({"WEBHOOK_TOKEN": TOKEN}, {}),
    ({"WEBHOOK_TOKEN": TOKEN}, {"Authorization": "Bearer wrong"}),
    ({"CLIENTS_JSON": CLIENT_TOKEN}, {}),
    ({"CLIENTS_JSON": CLIENT_TOKEN}, {"X-Vapi-Secret": "wrong"}),
    ({"VAPI_WEBHOOK_HMAC_SECRET": SECRET}, {}),
    ({"VAPI_WEBHOOK_HMAC_SECRET": SECRET}, {"x-signature": "00" * 32}),
    ({"VAPI_WEBHOOK_HMAC_SECRET": SECRET}, {"x-signature": "00" * 32, "x-timestamp": STALE}),
    ({"VAPI_WEBHOOK_HMAC_SECRET": SECRET}, {"x-signature": "00" * 32, "x-timestamp": "nan"}),
    ({"VAPI_WEBHOOK_HMAC_SECRET": SECRET}, {"x-signature": "zz", "x-timestamp": "1"}),
    ({"WEBHOOK_TOKEN": TOKEN, "VAPI_WEBHOOK_HMAC_SECRET": SECRET}, {"X-Vapi-Secret": "wrong"}),
    ({"WEBHOOK_TOKEN": TOKEN, "VAPI_WEBHOOK_HMAC_SECRET": SECRET},
     {"X-Vapi-Secret": "wrong", "x-signature": "00" * 32, "x-timestamp": STALE}),
])
def test_a_request_that_cannot_pass_is_refused_before_its_body_is_read(config, headers):
    status, answer, bytes_read = call_wsgi(create_app(config), headers)
    assert (status, answer, bytes_read) == (401, {"error": "unauthorized"}, 0)


# Headers built when the test runs: a signed timestamp from collection time would be
# outside the window in a run longer than it.
@pytest.mark.parametrize(("config", "headers"), [
    ({"WEBHOOK_TOKEN": TOKEN}, lambda: {"X-Vapi-Secret": TOKEN}),
    ({"VAPI_WEBHOOK_HMAC_SECRET": SECRET}, _hmac_headers),
    ({"WEBHOOK_TOKEN": TOKEN, "VAPI_WEBHOOK_HMAC_SECRET": SECRET},
     lambda: {"X-Vapi-Secret": "wrong", **_hmac_headers()}),
])
def test_a_request_that_can_pass_is_read(config, headers):
    status, answer, bytes_read = call_wsgi(create_app(config), headers())
    assert (status, answer) == (200, {"status": "ignored"}) and bytes_read > 0


def test_a_signature_that_could_pass_is_checked_on_the_body():
    status, answer, bytes_read = call_wsgi(create_app({"VAPI_WEBHOOK_HMAC_SECRET": SECRET}),
                                      {"x-signature": "00" * 32, "x-timestamp": str(time.time())})
    assert (status, answer) == (401, {"error": "unauthorized"}) and bytes_read > 0


def test_every_token_is_compared_whichever_matches(monkeypatch):
    clients = [{"name": f"C{n}", "webhook_token": f"client-token-{n}"} for n in range(3)]
    app = create_app({"WEBHOOK_TOKEN": TOKEN, "CLIENTS_JSON": json.dumps(clients)})
    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append(1) or real(a, b))
    for offered in (TOKEN, "client-token-0", "client-token-2", "nobody"):
        compared.clear()
        post(app, headers={"X-Vapi-Secret": offered})
        assert len(compared) == 4  # the global token and the three clients'
