"""Clients as data: CLIENTS_FILE / CLIENTS_JSON, the default client, and clear errors."""

from __future__ import annotations

import json

import pytest

from vapi_bridge import create_app
from vapi_bridge.config import ConfigError, load_settings

NORTH = {"name": "North", "assistant_ids": ["asst-n1", "asst-n2"], "phone_number_ids": ["pn-n"],
         "ghl_api_key": "pit-north", "ghl_location_id": "loc-north", "slack_channel_id": "C-n",
         "timezone": "America/Chicago", "outcome_tags": {"voicemail": "left-voicemail"},
         "ghl_incoming_webhook_urls": {"booking": "https://services.leadconnectorhq.com/hooks/b"}}


def test_file_and_lookup(tmp_path):
    path = tmp_path / "clients.json"
    path.write_text(json.dumps([NORTH]))
    clients = load_settings({"CLIENTS_FILE": str(path), "SLACK_BOT_TOKEN": "xoxb-shared"}).clients
    north = clients.resolve("asst-n2")
    assert north.name == "North" and north.ghl_location_id == "loc-north"
    assert north.slack_bot_token == "xoxb-shared"  # falls back to SLACK_BOT_TOKEN
    assert clients.resolve(None, "pn-n") is north
    assert clients.resolve("unknown").name == "default"
    assert clients.by_location("loc-north") is north
    assert north.outcome_tags["voicemail"] == "left-voicemail"
    with pytest.raises(TypeError):
        north.outcome_tags["completed"] = "x"  # immutable: no request can change a client
    assert "pit-north" not in repr(north)


def test_secrets_from_named_variables():
    entry = {**NORTH, "ghl_api_key_env": "NORTH_KEY", "slack_bot_token_env": "NORTH_SLACK"}
    del entry["ghl_api_key"]
    clients = load_settings({"CLIENTS_JSON": json.dumps([entry]), "NORTH_KEY": "pit-env",
                             "NORTH_SLACK": "xoxb-env"}).clients
    assert clients.resolve("asst-n1").ghl_api_key == "pit-env"
    assert clients.resolve("asst-n1").slack_bot_token == "xoxb-env"


def test_single_client_variables_make_the_default_client():
    default = load_settings({"GHL_API_KEY": "pit", "GHL_LOCATION_ID": "loc",
                             "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/X",
                             "GHL_INCOMING_WEBHOOK_URL_DEPOSIT": "https://x.example/d"}
                            ).clients.default
    assert default.has_ghl and default.has_slack
    assert dict(default.ghl_incoming_webhook_urls) == {"deposit": "https://x.example/d"}


@pytest.mark.parametrize(("entries", "message"), [
    ("[{]", "CLIENTS_JSON: not valid JSON"),
    ('{"name": "x"}', "CLIENTS_JSON: must be a JSON list of clients"),
    ("[42]", "CLIENTS_JSON: client #1: must be a JSON object"),
    ([{"assistant_ids": ["a"]}], "CLIENTS_JSON: client #1: field name: Missing data"),
    ([NORTH, {**NORTH, "name": "Copy", "assistant_ids": ["asst-n2"], "phone_number_ids": []}],
     "CLIENTS_JSON: client Copy: assistant id 'asst-n2' is already used by client North"),
    ([{"name": "default"}], "name 'default' is already used by the default client"),
    ([{**NORTH, "ghl_api_kee": "typo"}], "client #1 (North): field ghl_api_kee: Unknown field."),
    ([{**NORTH, "outcome_tags": {"booked": "x"}}], "client #1 (North): field outcome_tags"),
    ([{**NORTH, "slack_webhook_url": "not a url"}], "field slack_webhook_url: Not a valid URL."),
    ([{**NORTH, "assistant_ids": "asst-n1"}], "field assistant_ids: Not a valid list."),
    ([{"name": "A", "ghl_api_key_env": "MISSING_VAR"}],
     "client #1 (A): field ghl_api_key_env: environment variable MISSING_VAR is not set"),
    ([{"name": "A", "ghl_api_key": "k", "ghl_api_key_env": "K"}],
     "field ghl_api_key: give ghl_api_key or ghl_api_key_env, not both"),
])
def test_bad_clients_stop_start_up_naming_entry_and_field(entries, message):
    text = entries if isinstance(entries, str) else json.dumps(entries)
    with pytest.raises(ConfigError) as caught:
        create_app({"CLIENTS_JSON": text})
    assert message in str(caught.value)


def test_unreadable_clients_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"CLIENTS_FILE .*nope.json: cannot be read"):
        load_settings({"CLIENTS_FILE": str(tmp_path / "nope.json")})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"name": "A", "timezone": 5}]))
    with pytest.raises(ConfigError, match=r"CLIENTS_FILE .*bad.json: client #1 \(A\): field "
                                          r"timezone: Not a valid string."):
        load_settings({"CLIENTS_FILE": str(bad)})


def test_unknown_time_zones_stop_start_up():
    with pytest.raises(ConfigError, match="DEFAULT_TIMEZONE: Unknown time zone 'Mars/Base'"):
        load_settings({"DEFAULT_TIMEZONE": "Mars/Base"})
    with pytest.raises(ConfigError, match=r"client #1 \(A\): field timezone: Unknown time zone"):
        load_settings({"CLIENTS_JSON": json.dumps([{"name": "A", "timezone": "Europe/Nowhere"}])})


def test_a_clients_own_webhook_secrets_inline_or_from_variables():
    entries = [{**NORTH, "webhook_token": "north-token", "hmac_secret_env": "NORTH_HMAC"},
               {"name": "South", "webhook_token_env": "SOUTH_TOKEN", "hmac_secret": "s-hmac"}]
    clients = load_settings({"CLIENTS_JSON": json.dumps(entries), "NORTH_HMAC": "n-hmac",
                             "SOUTH_TOKEN": "s-token"}).clients
    north, south = clients.by_name("North"), clients.by_name("South")
    assert (north.webhook_token, north.hmac_secret) == ("north-token", "n-hmac")
    assert (south.webhook_token, south.hmac_secret) == ("s-token", "s-hmac")
    assert clients.default.webhook_token is None and clients.default.hmac_secret is None
    for secret in ("north-token", "n-hmac"):
        assert secret not in repr(north) and secret not in repr(load_settings(
            {"CLIENTS_JSON": json.dumps(entries), "NORTH_HMAC": "n-hmac",
             "SOUTH_TOKEN": "s-token"}))


@pytest.mark.parametrize(("env", "message"), [
    ({"CLIENTS_JSON": json.dumps([{"name": "A", "webhook_token": "t", "webhook_token_env": "T"}])},
     "field webhook_token: give webhook_token or webhook_token_env, not both"),
    ({"CLIENTS_JSON": json.dumps([{"name": "A", "hmac_secret_env": "NOPE"}])},
     "client #1 (A): field hmac_secret_env: environment variable NOPE is not set"),
    ({"CLIENTS_JSON": json.dumps([{"name": "A", "webhook_token": ""}])},
     "client #1 (A): field webhook_token"),
    ({"CLIENTS_JSON": json.dumps([{"name": "A", "webhook_token": "same-secret"},
                                  {"name": "B", "hmac_secret": "same-secret"}])},
     "CLIENTS_JSON: client B: hmac_secret is the same as client A's"),
    ({"CLIENTS_JSON": json.dumps([{"name": "A", "hmac_secret": "same-secret"}]),
      "WEBHOOK_TOKEN": "same-secret"},
     "client A: its webhook_token and hmac_secret must differ from WEBHOOK_TOKEN"),
    ({"CLIENTS_JSON": json.dumps([{"name": "A", "webhook_token": "same-secret"}]),
      "VAPI_WEBHOOK_HMAC_SECRET": "same-secret"},
     "client A: its webhook_token and hmac_secret must differ from VAPI_WEBHOOK_HMAC_SECRET"),
])
def test_bad_client_secrets_stop_start_up_without_echoing_them(env, message):
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    assert message in str(caught.value)
    assert "same-secret" not in str(caught.value)
