"""Start-up: which backend each environment picks, and how bad settings stop the app."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from vapi_bridge import create_app
from vapi_bridge.config import ConfigError, settings_from_mapping
from vapi_bridge.storage import create_backend
from vapi_bridge.storage.redis_backend import require_tls

ROOT = Path(__file__).resolve().parent.parent
REST = {"KV_REST_API_URL": "https://kv.example.com", "KV_REST_API_TOKEN": "t"}


@pytest.mark.parametrize(("env", "backend"), [
    ({}, "memory"),
    ({"REDIS_URL": "redis://127.0.0.1:6379/0"}, "redis"),
    ({"KV_URL": "rediss://default:pw@x.upstash.io:6379"}, "redis"),
    (REST, "kv-rest"),
    ({"UPSTASH_REDIS_REST_URL": "https://u.upstash.io", "UPSTASH_REDIS_REST_TOKEN": "t"},
     "kv-rest"),
    ({"REDIS_URL": "redis://127.0.0.1:6379/0", **REST}, "redis"),  # TCP before REST
    ({"KV_REST_API_URL": "https://kv.example.com", "KV_REST_API_TOKEN": ""}, None),
    ({"STATE_STORAGE": "memory", "REDIS_URL": "redis://127.0.0.1:6379/0"}, "memory"),
    ({"STATE_STORAGE": "kv-rest", "REDIS_URL": "redis://127.0.0.1:6379/0", **REST}, "kv-rest"),
    ({"STATE_STORAGE": "REDIS", "KV_URL": "redis://127.0.0.1:6379/0"}, "redis"),
])
def test_environment_picks_the_documented_backend(env, backend):
    if backend is None:
        with pytest.raises(ConfigError):
            settings_from_mapping(env)
        return
    settings = settings_from_mapping(env)
    assert settings.storage_backend == backend
    assert create_backend(settings).name == backend


@pytest.mark.parametrize(("env", "message"), [
    ({"STATE_STORAGE": "dynamo"}, "STATE_STORAGE must be one of memory, redis, kv-rest"),
    ({"STATE_STORAGE": "redis"}, "STATE_STORAGE=redis needs REDIS_URL or KV_URL"),
    ({"STATE_STORAGE": "kv-rest"}, "STATE_STORAGE=kv-rest needs KV_REST_API_URL"),
    ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must start with redis://"),
    ({"REDIS_URL": "http://cache:6379"}, "REDIS_URL must start with redis://"),
    ({"KV_URL": "redis://:6379"}, "KV_URL has no host name"),
    ({"REDIS_URL": "redis://h:notaport"}, "REDIS_URL is not a valid URL"),
    ({"REDIS_URL": "unix://"}, "REDIS_URL needs a socket path"),
    ({"KV_REST_API_URL": "kv.example.com", "KV_REST_API_TOKEN": "t"},
     "KV_REST_API_URL must start with http:// or https://"),
    ({"KV_REST_API_URL": "https://kv.example.com"},
     "KV_REST_API_URL is set but KV_REST_API_TOKEN is missing"),
    ({"UPSTASH_REDIS_REST_URL": "https://u.upstash.io"},
     "UPSTASH_REDIS_REST_URL is set but UPSTASH_REDIS_REST_TOKEN is missing"),
    ({"STATE_STORAGE_TTL": "0"}, "STATE_STORAGE_TTL must be a positive int"),
    ({"STATE_STORAGE_TTL": "1 day"}, "STATE_STORAGE_TTL must be a positive int"),
    ({"STATE_STORAGE_MAX_ENTRIES": "-5"}, "STATE_STORAGE_MAX_ENTRIES must be a positive int"),
    ({"STATE_STORAGE_TIMEOUT": "soon"}, "STATE_STORAGE_TIMEOUT must be a positive float"),
    ({"STATE_STORAGE_PREFIX": "my app"}, "STATE_STORAGE_PREFIX must not contain whitespace"),
])
def test_bad_settings_give_a_one_line_error_naming_the_variable(env, message):
    with pytest.raises(ConfigError) as caught:
        create_app(env)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("token", ["x", "admin-s3cret", "fifteen-chars-x", " " * 3 + "a" * 15])
def test_an_admin_token_under_16_characters_stops_start_up(token):
    with pytest.raises(ConfigError) as caught:
        create_app({"ADMIN_TOKEN": token})
    message = str(caught.value)
    assert message.startswith("ADMIN_TOKEN must be at least 16 characters long")
    assert "\n" not in message and token.strip() not in message


def test_an_admin_token_of_16_characters_or_none_starts():
    assert create_app({"ADMIN_TOKEN": "sixteen-chars-ok"}).config["SETTINGS"].admin_token
    assert create_app({"ADMIN_TOKEN": ""}).config["SETTINGS"].admin_token is None


def test_errors_never_echo_a_password():
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({"REDIS_URL": "http://user:s3cret@host:6379"})
    assert "s3cret" not in str(caught.value)


def test_wsgi_raises_the_error_naming_the_variable():
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"], cwd=ROOT, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "KV_REST_API_URL": "https://kv.example.com"}, timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "vapi_bridge.config.ConfigError: KV_REST_API_URL is set but KV_REST_API_TOKEN is missing")


def test_gunicorn_stops_when_the_config_is_bad():
    result = subprocess.run(
        [str(Path(sys.executable).with_name("gunicorn"))], cwd=ROOT, capture_output=True,
        text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "PORT": "0", "HOST": "127.0.0.1",
                                    "REDIS_URL": "http://not-redis"})
    assert result.returncode != 0
    assert "ConfigError: REDIS_URL must start with redis://" in result.stderr
    assert "Worker failed to boot" in result.stderr


@pytest.mark.parametrize(("url", "expected", "rewritten"), [
    ("redis://default:pw@my-kv.kv.vercel-storage.com:35000",
     "rediss://default:pw@my-kv.kv.vercel-storage.com:35000", True),
    ("redis://default:pw@fine-cat-1234.upstash.io:6379",
     "rediss://default:pw@fine-cat-1234.upstash.io:6379", True),
    ("rediss://default:pw@fine-cat-1234.upstash.io:6379",
     "rediss://default:pw@fine-cat-1234.upstash.io:6379", False),
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0", False),
    ("redis://upstash.io.evil.example:6379", "redis://upstash.io.evil.example:6379", False),
])
def test_kv_url_needs_tls_on_vercel_and_upstash_hosts(url, expected, rewritten):
    assert require_tls(url) == (expected, rewritten)


def test_kv_url_rewrite_is_logged_and_uses_tls(caplog):
    caplog.set_level(logging.INFO, logger="vapi_bridge")
    app = create_app({"KV_URL": "redis://default:pw@fine-cat-1234.upstash.io:6379"})
    backend = app.extensions["state_storage"].backend
    assert backend.client.connection_pool.connection_class is redis.SSLConnection
    assert "KV_URL points at a TLS-only host: connecting with rediss://" in caplog.text
    assert "pw@" not in caplog.text
    assert "[STATE_STORAGE] Using Redis storage" in caplog.text


@pytest.mark.parametrize(("env", "line", "level"), [
    ({}, "[STATE_STORAGE] Using in-memory storage (not persistent in Vercel!)", "WARNING"),
    ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "[STATE_STORAGE] Using Redis storage", "INFO"),
    (REST, "[STATE_STORAGE] Using Vercel KV storage", "INFO"),
])
def test_chosen_backend_is_logged_once(caplog, env, line, level):
    caplog.set_level(logging.INFO, logger="vapi_bridge")
    create_app(env)
    records = [r for r in caplog.records if r.getMessage().startswith("[STATE_STORAGE] Using")]
    assert [(r.getMessage(), r.levelname) for r in records] == [(line, level)]


def test_extension_refuses_a_second_registration():
    from vapi_bridge.storage import state_storage

    app = create_app()
    with pytest.raises(RuntimeError, match="already registered"):
        state_storage.init_app(app)


# An open webhook: only while nothing can be harmed, or when the operator says so.

HARMFUL = [
    {"GHL_API_KEY": "pit", "GHL_LOCATION_ID": "loc"},
    {"GHL_API_KEY": "pit"},
    {"GHL_INCOMING_WEBHOOK_URL_BOOKING": "https://services.leadconnectorhq.com/hooks/b"},
    {"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/X"},
    {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_CHANNEL_ID": "C1"},
    {"VAPI_API_KEY": "vapi-key"},
    {"CLIENTS_JSON": '[{"name": "North", "ghl_api_key": "pit-n", "ghl_location_id": "l"}]'},
]


@pytest.mark.parametrize("env", HARMFUL)
def test_an_integration_without_a_webhook_secret_stops_start_up(env):
    with pytest.raises(ConfigError) as caught:
        create_app(env)
    message = str(caught.value)
    assert message.startswith("Set WEBHOOK_TOKEN or VAPI_WEBHOOK_HMAC_SECRET:")
    assert "ALLOW_UNAUTHENTICATED_WEBHOOKS=true" in message and "\n" not in message


@pytest.mark.parametrize("secret", [
    {"WEBHOOK_TOKEN": "t"}, {"VAPI_WEBHOOK_HMAC_SECRET": "s"},
    {"CLIENTS_JSON": '[{"name": "North", "webhook_token": "n"}]'},
    {"CLIENTS_JSON": '[{"name": "North", "hmac_secret": "n"}]'},
])
def test_any_webhook_secret_lets_integrations_start(secret, caplog):
    caplog.set_level(logging.WARNING)
    create_app({"GHL_API_KEY": "pit", "GHL_LOCATION_ID": "loc", "VAPI_API_KEY": "k", **secret})
    assert "accepts every request" not in caplog.text


@pytest.mark.parametrize("env", [{}, {"ALLOW_UNAUTHENTICATED_WEBHOOKS": "true", **HARMFUL[0]},
                                 {"ALLOW_UNAUTHENTICATED_WEBHOOKS": "TRUE", **HARMFUL[5]}])
def test_an_open_webhook_starts_with_one_warning(env, caplog):
    caplog.set_level(logging.WARNING)
    create_app(env)
    warnings = [r.getMessage() for r in caplog.records if "accepts every request" in r.getMessage()]
    assert warnings == ["[WEBHOOK] Neither WEBHOOK_TOKEN nor VAPI_WEBHOOK_HMAC_SECRET is set:"
                        " /vapi/webhook accepts every request"]


@pytest.mark.parametrize("name", ["ALLOW_UNAUTHENTICATED_WEBHOOKS", "ACCESS_LOG"])
def test_true_or_false_settings_refuse_anything_else(name):
    with pytest.raises(ConfigError, match=f"{name} must be true or false"):
        create_app({name: "yes please"})


def test_wsgi_stops_with_integrations_and_no_webhook_secret():
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"], cwd=ROOT, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "VAPI_API_KEY": "k"}, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(
        "vapi_bridge.config.ConfigError: Set WEBHOOK_TOKEN or VAPI_WEBHOOK_HMAC_SECRET:")


def test_a_client_no_secret_reaches_is_named_at_start_up(caplog):
    caplog.set_level(logging.WARNING)
    create_app({"GHL_API_KEY": "pit", "GHL_LOCATION_ID": "loc", "CLIENTS_JSON": (
        '[{"name": "North", "webhook_token": "n", "ghl_api_key": "p", "ghl_location_id": "l"}]')})
    assert ("[WEBHOOK] No webhook reaches client(s) default: integrations but no secret of their"
            " own, and neither WEBHOOK_TOKEN nor VAPI_WEBHOOK_HMAC_SECRET is set") in caplog.text
