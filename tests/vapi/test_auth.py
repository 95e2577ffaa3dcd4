"""Who may call the Server URL: token (three ways), HMAC (Vapi's credential), both, neither."""

from __future__ import annotations

import base64
import hmac
import json
import logging
import time

import pytest

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
    {"timestamp": str(int(time.time() * 1000))},  # milliseconds
])
def test_hmac_signature_is_accepted(hmac_app, variant):
    assert post(hmac_app, headers=_hmac_headers(**variant)).status_code == 200


def test_hex_signature_in_capitals_is_accepted(hmac_app):
    headers = _hmac_headers()
    headers["x-signature"] = headers["x-signature"].upper()
    assert post(hmac_app, headers=headers).status_code == 200


@pytest.mark.parametrize(("headers", "reason"), [
    ({}, "hmac: no x-signature header"),
    ({"x-signature": "00" * 32}, "hmac: missing or malformed x-timestamp header"),
    ({"x-signature": "00" * 32, "x-timestamp": "yesterday"},
     "hmac: missing or malformed x-timestamp header"),
    (_hmac_headers(timestamp=str(int(time.time()) - 301)), "hmac: timestamp outside the 300s"),
    (_hmac_headers(timestamp=str(int(time.time() * 1000) + 3_600_000)), "outside the 300s window"),
    ({**_hmac_headers(), "x-signature": "not-a-signature"}, "hmac: signature mismatch"),
    (_hmac_headers(body=b'{"message": {"type": "hang"}}'), "hmac: signature mismatch"),
    (_hmac_headers(algorithm="sha512"), "hmac: signature mismatch"),
])
def test_bad_hmac_is_401_and_never_logs_the_signature(hmac_app, caplog, headers, reason):
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
