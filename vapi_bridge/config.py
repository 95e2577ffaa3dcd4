"""Settings: the one place that reads the environment.

Everything the service is told from outside arrives here, is checked once, and
leaves as a frozen ``Settings`` value. A bad value stops start-up with a
one-line ``ConfigError`` that names the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .clients import DEFAULT_NAME, Client, ClientConfigError, ClientDirectory, load_clients

STORAGE_BACKENDS = ("memory", "redis", "kv-rest")
STORAGE_FALLBACKS = ("memory", "none")
REDIS_SCHEMES = ("redis", "rediss", "unix")
HMAC_ALGORITHMS = ("sha256", "sha512", "sha1")
E164 = re.compile(r"\+[1-9]\d{6,14}")
TOKEN_MIN_LENGTH = 16  # ADMIN_TOKEN, METRICS_TOKEN (the README asks for a token_urlsafe(32))


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    # Storage: which backend is wanted, and the variables that located it
    # (kept so errors and logs can name the variable the user actually set).
    state_storage: str | None = None
    redis_url: str | None = None
    redis_url_var: str = "REDIS_URL"
    rest_url: str | None = None
    rest_url_var: str = "KV_REST_API_URL"
    rest_token: str | None = None
    storage_prefix: str = "vapi"
    storage_ttl: int = 86400
    storage_max_entries: int = 100_000
    storage_timeout: float = 2.0
    storage_connect_timeout: float = 1.0
    storage_fallback: str = "memory"  # a persistent store that stops answering: memory | none
    log_level: str = "INFO"
    log_format: str = "text"  # json under gunicorn (gunicorn.conf.py) and on Vercel
    access_log: bool = True  # gunicorn's line per request (gunicorn.conf.py)
    # Webhook authentication (either passes when both are set; clients may have their own).
    webhook_token: str | None = field(default=None, repr=False)
    hmac_secret: str | None = field(default=None, repr=False)
    allow_unauthenticated_webhooks: bool = False
    hmac_header: str = "x-signature"
    hmac_timestamp_header: str = "x-timestamp"  # "" signs the body alone
    hmac_algorithm: str = "sha256"
    hmac_tolerance: int = 300
    max_body_bytes: int = 10 * 1024 * 1024
    body_read_timeout: float = 5.0  # a body not all received by then: 408, connection closed
    trusted_proxies: int = 0  # reverse proxies in front whose X-Forwarded-* headers are believed
    # Answers to Vapi's request messages.
    vapi_assistant_id: str | None = None
    vapi_transfer_number: str | None = None
    # Outside services: the clients, and where and how to reach them.
    clients: ClientDirectory = field(
        default_factory=lambda: ClientDirectory([], Client(DEFAULT_NAME)))
    vapi_api_key: str | None = field(default=None, repr=False)
    vapi_api_base_url: str = "https://api.vapi.ai"
    # vapi-setup: the bridge's public address, and a Vapi credential every client may share.
    public_url: str | None = None
    vapi_server_credential_id: str | None = None
    ghl_api_base_url: str = "https://services.leadconnectorhq.com"
    slack_api_base_url: str = "https://slack.com/api/"
    ghl_app_base_url: str = "https://app.gohighlevel.com"
    ghl_create_contacts: bool = True
    ghl_note_transcript_chars: int = 1500
    slack_mention: str | None = None
    pipeline_deadline: float = 15.0
    tool_deadline: float = 8.0
    http_timeout: float = 10.0
    recording_max_bytes: int = 25 * 1024 * 1024  # larger recordings stay a link (issue 17)
    # The outbox: parked deliveries, retried with backoff, then dead letters.
    retry_max_attempts: int = 8
    retry_base_delay: float = 60.0
    worker_interval: float = 30.0
    cron_secret: str | None = field(default=None, repr=False)
    # The status page at / (404 without it).
    admin_token: str | None = field(default=None, repr=False)
    # GET /metrics (404 without it); the workers' shared directory under gunicorn.
    metrics_token: str | None = field(default=None, repr=False)
    metrics_dir: str | None = None

    @property
    def auth_modes(self) -> list[str]:
        """Which webhook checks are on (never the secrets themselves)."""
        clients = tuple(self.clients)
        return [mode for mode, on in (
            ("token", self.webhook_token), ("hmac", self.hmac_secret),
            ("client-token", any(c.webhook_token for c in clients)),
            ("client-hmac", any(c.hmac_secret for c in clients))) if on]

    @property
    def integrations(self) -> list[str]:
        """The outside services some client could act on (what an open webhook could harm)."""
        clients = tuple(self.clients)
        return [name for name, on in (
            ("GoHighLevel", any(c.ghl_api_key or c.ghl_incoming_webhook_urls for c in clients)),
            ("Slack", any(c.slack_bot_token or c.slack_webhook_url for c in clients)),
            ("the Vapi API", self.vapi_api_key)) if on]

    @property
    def storage_backend(self) -> str:
        """The backend these settings pick: forced, else Redis, else REST, else memory."""
        if self.state_storage:
            return self.state_storage
        if self.redis_url:
            return "redis"
        if self.rest_url:
            return "kv-rest"
        return "memory"


def load_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """Read the environment, with ``overrides`` (same names) taking precedence.

    An override of ``None`` or ``""`` unsets the variable.
    """
    env = {**os.environ, **(overrides or {})}
    return settings_from_mapping(env)


def settings_from_mapping(env: Mapping[str, Any]) -> Settings:
    def get(name: str) -> str | None:
        value = env.get(name)
        if value is None:
            return None
        value = str(value).strip()
        return value or None

    redis_url_var = "REDIS_URL" if get("REDIS_URL") else "KV_URL"
    redis_url = get(redis_url_var)
    if redis_url:
        _check_url(redis_url_var, redis_url, REDIS_SCHEMES)

    rest_url_var, rest_token_var = "KV_REST_API_URL", "KV_REST_API_TOKEN"
    if not get(rest_url_var) and get("UPSTASH_REDIS_REST_URL"):
        rest_url_var, rest_token_var = "UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"
    rest_url, rest_token = get(rest_url_var), get(rest_token_var)
    if rest_url:
        _check_url(rest_url_var, rest_url, ("http", "https"))
        if not rest_token:
            raise ConfigError(f"{rest_url_var} is set but {rest_token_var} is missing")

    forced = get("STATE_STORAGE")
    if forced:
        forced = forced.lower()
        if forced not in STORAGE_BACKENDS:
            raise ConfigError(
                f"STATE_STORAGE must be one of {', '.join(STORAGE_BACKENDS)} (got {forced!r})"
            )
        if forced == "redis" and not redis_url:
            raise ConfigError("STATE_STORAGE=redis needs REDIS_URL or KV_URL")
        if forced == "kv-rest" and not rest_url:
            raise ConfigError(
                "STATE_STORAGE=kv-rest needs KV_REST_API_URL and KV_REST_API_TOKEN"
                " (or UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN)"
            )

    fallback = (get("STATE_STORAGE_FALLBACK") or "memory").lower()
    if fallback not in STORAGE_FALLBACKS:
        raise ConfigError(f"STATE_STORAGE_FALLBACK must be memory or none (got {fallback!r})")

    prefix = get("STATE_STORAGE_PREFIX") or "vapi"
    if any(ch.isspace() for ch in prefix):
        raise ConfigError(f"STATE_STORAGE_PREFIX must not contain whitespace (got {prefix!r})")

    algorithm = (get("VAPI_WEBHOOK_HMAC_ALGORITHM") or "sha256").lower()
    if algorithm not in HMAC_ALGORITHMS:
        raise ConfigError(
            f"VAPI_WEBHOOK_HMAC_ALGORITHM must be one of {', '.join(HMAC_ALGORITHMS)}"
            f" (got {algorithm!r})"
        )
    transfer_number = get("VAPI_TRANSFER_NUMBER")
    if transfer_number and not E164.fullmatch(transfer_number):
        raise ConfigError("VAPI_TRANSFER_NUMBER must be an E.164 number such as +14155550123")
    # Set but empty means "no timestamp header": the HMAC covers the body alone.
    timestamp_header = env.get("VAPI_WEBHOOK_HMAC_TIMESTAMP_HEADER")
    timestamp_header = "x-timestamp" if timestamp_header is None else str(timestamp_header).strip()

    try:
        clients = load_clients(env)
    except ClientConfigError as exc:
        raise ConfigError(str(exc)) from None
    base_urls = {}
    for name, default in (("VAPI_API_BASE_URL", "https://api.vapi.ai"),
                          ("GHL_API_BASE_URL", "https://services.leadconnectorhq.com"),
                          ("SLACK_API_BASE_URL", "https://slack.com/api/"),
                          ("GHL_APP_BASE_URL", "https://app.gohighlevel.com")):
        base_urls[name] = get(name) or default
        _check_url(name, base_urls[name], ("http", "https"))

    public_url = get("PUBLIC_URL")
    if public_url:
        _check_url("PUBLIC_URL", public_url, ("https", "http"))

    admin_token, metrics_token = _token(get, "ADMIN_TOKEN"), _token(get, "METRICS_TOKEN")
    webhook_token, hmac_secret = get("WEBHOOK_TOKEN"), get("VAPI_WEBHOOK_HMAC_SECRET")
    # A client's own secret must not be a global one: it could not say whose request it is.
    for variable, secret in (("WEBHOOK_TOKEN", webhook_token),
                             ("VAPI_WEBHOOK_HMAC_SECRET", hmac_secret)):
        owner = next((c.name for c in clients
                      if secret and secret in (c.webhook_token, c.hmac_secret)), None)
        if owner:  # named, never echoed
            raise ConfigError(f"client {owner}: its webhook_token and hmac_secret must differ"
                              f" from {variable}")
    log_format = (get("LOG_FORMAT") or ("json" if get("VERCEL") else "text")).lower()
    if log_format not in ("json", "text"):
        raise ConfigError(f"LOG_FORMAT must be json or text (got {log_format!r})")

    return Settings(
        state_storage=forced,
        redis_url=redis_url,
        redis_url_var=redis_url_var,
        rest_url=rest_url.rstrip("/") if rest_url else None,
        rest_url_var=rest_url_var,
        rest_token=rest_token,
        storage_prefix=prefix,
        storage_ttl=_number(get, "STATE_STORAGE_TTL", int, 86400),
        storage_max_entries=_number(get, "STATE_STORAGE_MAX_ENTRIES", int, 100_000),
        storage_timeout=_number(get, "STATE_STORAGE_TIMEOUT", float, 2.0),
        storage_connect_timeout=_number(get, "STATE_STORAGE_CONNECT_TIMEOUT", float, 1.0),
        storage_fallback=fallback,
        log_level=(get("LOG_LEVEL") or "INFO").upper(),
        log_format=log_format,
        access_log=_boolean(get, "ACCESS_LOG", True),
        webhook_token=webhook_token,
        hmac_secret=hmac_secret,
        allow_unauthenticated_webhooks=_boolean(get, "ALLOW_UNAUTHENTICATED_WEBHOOKS", False),
        hmac_header=get("VAPI_WEBHOOK_HMAC_HEADER") or "x-signature",
        hmac_timestamp_header=timestamp_header,
        hmac_algorithm=algorithm,
        hmac_tolerance=_number(get, "VAPI_WEBHOOK_HMAC_TOLERANCE", int, 300),
        max_body_bytes=_number(get, "MAX_BODY_BYTES", int, 10 * 1024 * 1024),
        body_read_timeout=_number(get, "BODY_READ_TIMEOUT_SECONDS", float, 5.0),
        trusted_proxies=_trusted_proxies(get("TRUSTED_PROXIES")),
        vapi_assistant_id=get("VAPI_ASSISTANT_ID"),
        vapi_transfer_number=transfer_number,
        clients=clients,
        vapi_api_key=get("VAPI_API_KEY"),
        vapi_api_base_url=base_urls["VAPI_API_BASE_URL"].rstrip("/"),
        public_url=public_url.rstrip("/") if public_url else None,
        vapi_server_credential_id=get("VAPI_SERVER_CREDENTIAL_ID"),
        ghl_api_base_url=base_urls["GHL_API_BASE_URL"].rstrip("/"),
        slack_api_base_url=base_urls["SLACK_API_BASE_URL"].rstrip("/") + "/",
        ghl_app_base_url=base_urls["GHL_APP_BASE_URL"].rstrip("/"),
        ghl_create_contacts=(get("GHL_CREATE_CONTACTS") or "true").lower() != "false",
        ghl_note_transcript_chars=_number(get, "GHL_NOTE_TRANSCRIPT_CHARS", int, 1500),
        slack_mention=get("SLACK_MENTION"),
        pipeline_deadline=_number(get, "PIPELINE_DEADLINE_SECONDS", float, 15.0),
        tool_deadline=_number(get, "TOOL_DEADLINE_SECONDS", float, 8.0),
        http_timeout=_number(get, "HTTP_TIMEOUT_SECONDS", float, 10.0),
        recording_max_bytes=_number(get, "RECORDING_MAX_BYTES", int, 25 * 1024 * 1024),
        retry_max_attempts=_number(get, "RETRY_MAX_ATTEMPTS", int, 8),
        retry_base_delay=_number(get, "RETRY_BASE_DELAY_SECONDS", float, 60.0),
        worker_interval=_number(get, "WORKER_INTERVAL_SECONDS", float, 30.0),
        cron_secret=get("CRON_SECRET"),
        admin_token=admin_token,
        metrics_token=metrics_token,
        metrics_dir=get("PROMETHEUS_MULTIPROC_DIR"),
    )


def _token(get, name: str) -> str | None:
    token = get(name)
    if token and len(token) < TOKEN_MIN_LENGTH:
        # The value itself (or its length) is never echoed.
        raise ConfigError(
            f"{name} must be at least {TOKEN_MIN_LENGTH} characters long; generate one"
            " with: python -c \"import secrets; print(secrets.token_urlsafe(32))\""
        )
    return token


def check_webhook_auth(settings: Settings) -> str | None:
    """Refuse to start when anyone could act through an open webhook; else a warning, if any.

    Any secret set (global or a client's) closes the webhook to requests without one. With
    none at all it is open, which is allowed only while no client has an integration, or
    when the operator says so (ALLOW_UNAUTHENTICATED_WEBHOOKS).
    """
    if settings.webhook_token or settings.hmac_secret:
        return None
    if settings.auth_modes:  # clients' own secrets only: a client without one is out of reach
        unreachable = [c.name for c in settings.clients if not (c.webhook_token or c.hmac_secret)
                       and (c.has_ghl or c.has_slack or c.ghl_incoming_webhook_urls)]
        return (f"No webhook reaches client(s) {', '.join(unreachable)}: integrations but no"
                " secret of their own, and neither WEBHOOK_TOKEN nor VAPI_WEBHOOK_HMAC_SECRET"
                " is set") if unreachable else None
    harmed = settings.integrations
    if harmed and not settings.allow_unauthenticated_webhooks:
        raise ConfigError(
            f"Set WEBHOOK_TOKEN or VAPI_WEBHOOK_HMAC_SECRET: {' and '.join(harmed)} configured,"
            " and without either anyone could post to /vapi/webhook"
            " (ALLOW_UNAUTHENTICATED_WEBHOOKS=true accepts that)")
    return ("Neither WEBHOOK_TOKEN nor VAPI_WEBHOOK_HMAC_SECRET is set: /vapi/webhook accepts"
            " every request")


def _trusted_proxies(raw: str | None) -> int:
    if raw is None:
        return 0
    if not raw.isdigit() or int(raw) > 5:
        raise ConfigError(f"TRUSTED_PROXIES must be a number of proxies from 0 to 5 (got {raw!r})")
    return int(raw)


def _boolean(get, name: str, default: bool) -> bool:
    raw = (get(name) or str(default)).lower()
    if raw not in ("true", "false"):
        raise ConfigError(f"{name} must be true or false (got {raw!r})")
    return raw == "true"


def _number(get, name: str, kind: type, default):
    raw = get(name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or value <= 0:
        raise ConfigError(f"{name} must be a positive {kind.__name__} (got {raw!r})")
    return value


def _check_url(name: str, url: str, schemes: tuple[str, ...]) -> None:
    """Reject a URL we could not connect to, without echoing it (it may hold a password)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigError(f"{name} is not a valid URL ({exc})") from None
    if parts.scheme not in schemes:
        raise ConfigError(
            f"{name} must start with {' or '.join(s + '://' for s in schemes)}"
            f" (got {parts.scheme + '://' if parts.scheme else 'no scheme'})"
        )
    if parts.scheme == "unix" and not parts.path:
        raise ConfigError(f"{name} needs a socket path (unix:///path/to/redis.sock)")
    if parts.scheme != "unix" and not parts.hostname:
        raise ConfigError(f"{name} has no host name")
