"""Clients: the GoHighLevel accounts (and their Slack channels) one deployment serves.

Configuration is data: ``CLIENTS_FILE`` (a JSON file) or ``CLIENTS_JSON`` (the same
inline) lists the clients; the single-client variables (``GHL_API_KEY``, ...) form the
default client. A call is matched to its client by the Vapi assistant id, then the
phone number id, into an immutable ``Client``: nothing is shared between requests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from .client_maps import StageMap, StageMapSchema, placeholders, text

OUTCOMES = ("completed", "no-answer", "voicemail", "transferred", "failed", "other")
WEBHOOK_KINDS = ("default", "booking", "deposit")
DEFAULT_NAME = "default"
# Given inline or, with an ``_env`` suffix, as the name of an environment variable.
SECRETS = ("ghl_api_key", "slack_bot_token", "webhook_token", "hmac_secret")


class ClientConfigError(ValueError):
    """The clients configuration is wrong; the message names the source, entry and field."""


class WrongClient(Exception):
    """A request that passed with one client's own secret names another client's call."""

    def __init__(self, owner: Client, named: Client):
        super().__init__(f"authenticated as client {owner.name}, names client {named.name}")
        self.owner, self.named = owner, named


@dataclass(frozen=True)
class Client:
    name: str
    assistant_ids: tuple[str, ...] = ()
    phone_number_ids: tuple[str, ...] = ()
    ghl_api_key: str | None = field(default=None, repr=False)
    ghl_location_id: str | None = None
    ghl_calendar_id: str | None = None
    vapi_assistant_id: str | None = None  # for calls started from GoHighLevel
    vapi_phone_number_id: str | None = None
    vapi_credential_id: str | None = None  # the Vapi credential vapi-setup attaches, if given
    default_country: str = "US"  # how to read a phone number written without +country
    slack_channel_id: str | None = None
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_webhook_url: str | None = field(default=None, repr=False)
    slack_upload_recording: bool = False  # the recording as a file in the message's thread
    timezone: str = "UTC"
    ghl_incoming_webhook_urls: Mapping[str, str] = field(default_factory=dict, repr=False)
    outcome_tags: Mapping[str, str] = field(default_factory=dict)
    # The client's own webhook secrets: a request passing with one is this client's only.
    webhook_token: str | None = field(default=None, repr=False)
    hmac_secret: str | None = field(default=None, repr=False)
    # Call-ended CRM steps (crm_steps.py): structuredData path -> custom field key or id,
    # custom field -> text with placeholders; the stage the call earns.
    field_map: Mapping[str, str] = field(default_factory=dict)
    call_fields: Mapping[str, str] = field(default_factory=dict)
    stage_map: StageMap | None = None
    stage_allow_backwards: bool = False

    @property
    def key(self) -> str:
        """The client in a store key or a marker: names are free text, so a digest."""
        return name_digest(self.name)

    @property
    def has_ghl(self) -> bool:
        return bool(self.ghl_api_key and self.ghl_location_id)

    @property
    def has_slack(self) -> bool:
        return bool(self.slack_webhook_url or (self.slack_bot_token and self.slack_channel_id))

    @property
    def uploads_recording(self) -> bool:
        """The option on and a bot token posting (an incoming webhook cannot upload files)."""
        return bool(self.slack_upload_recording and not self.slack_webhook_url
                    and self.slack_bot_token and self.slack_channel_id)


def name_digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:16]


class ClientDirectory:
    """Every client, found by assistant id, phone number id, location id or name."""

    def __init__(self, clients: list[Client], default: Client):
        self.clients = tuple(clients)
        self.default = default
        # The assistant and number a client starts calls with (/ghl/outbound-call) name it
        # too, unless listed by another client or shared by several (then they name nobody).
        self._by_assistant = {**_unshared((c.vapi_assistant_id, c) for c in self.clients),
                              **{a: c for c in self.clients for a in c.assistant_ids}}
        self._by_phone = {**_unshared((c.vapi_phone_number_id, c) for c in self.clients),
                          **{p: c for c in self.clients for p in c.phone_number_ids}}
        self._by_name = {c.name: c for c in (*self.clients, default)}

    def resolve(self, assistant_id: str | None, phone_number_id: str | None = None, *,
                owner: Client | None = None) -> Client:
        """The call's client: by assistant, else phone number, else the default.

        ``owner`` is the client whose own secret let the request in: the call is that
        client's whatever it names, and naming another client raises ``WrongClient``.
        """
        if owner is not None:
            self.check_owner(owner, (assistant_id,), (phone_number_id,))
            return owner
        return (self._by_assistant.get(assistant_id or "")
                or self._by_phone.get(phone_number_id or "")
                or self.default)

    def check_owner(self, owner: Client, assistant_ids: Iterable[object],
                    phone_number_ids: Iterable[object]) -> None:
        """Raise ``WrongClient`` if any of these ids belongs to a client other than ``owner``."""
        named = [*(self._by_assistant.get(a) for a in assistant_ids if isinstance(a, str)),
                 *(self._by_phone.get(p) for p in phone_number_ids if isinstance(p, str))]
        other = next((c for c in named if c is not None and c.name != owner.name), None)
        if other is not None:
            raise WrongClient(owner, other)

    def by_name(self, name: str) -> Client | None:
        return self._by_name.get(name)

    def by_location(self, location_id: str) -> Client | None:
        return next((c for c in (*self.clients, self.default)
                     if c.ghl_location_id == location_id), None)

    def __iter__(self):
        return iter((self.default, *self.clients))


class _ClientSchema(Schema):
    class Meta:
        unknown = RAISE  # a misspelt key should stop start-up, not silently do nothing

    name = fields.String(required=True, validate=validate.Length(min=1))
    assistant_ids = fields.List(fields.String(validate=validate.Length(min=1)), load_default=list)
    phone_number_ids = fields.List(fields.String(validate=validate.Length(min=1)),
                                   load_default=list)
    ghl_api_key = fields.String()
    ghl_api_key_env = fields.String()
    ghl_location_id = fields.String()
    ghl_calendar_id = fields.String()
    vapi_assistant_id = fields.String()
    vapi_phone_number_id = fields.String()
    vapi_credential_id = fields.String(validate=validate.Length(min=1))
    default_country = fields.String(validate=validate.Regexp(r"^[A-Z]{2}$"), load_default="US")
    slack_channel_id = fields.String()
    slack_bot_token = fields.String()
    slack_bot_token_env = fields.String()
    slack_webhook_url = fields.Url(schemes={"https", "http"}, require_tld=False)
    slack_upload_recording = fields.Boolean(truthy={True}, falsy={False})
    timezone = fields.String(load_default="UTC", validate=lambda name: _known_zone(name))
    ghl_incoming_webhook_urls = fields.Dict(
        keys=fields.String(validate=validate.OneOf(WEBHOOK_KINDS)),
        values=fields.Url(schemes={"https", "http"}, require_tld=False), load_default=dict)
    outcome_tags = fields.Dict(keys=fields.String(validate=validate.OneOf(OUTCOMES)),
                               values=fields.String(validate=validate.Length(min=1)),
                               load_default=dict)
    webhook_token = fields.String(validate=validate.Length(min=1))
    webhook_token_env = fields.String()
    hmac_secret = fields.String(validate=validate.Length(min=1))
    hmac_secret_env = fields.String()
    field_map = fields.Dict(keys=text(), values=text(), load_default=dict)
    call_fields = fields.Dict(keys=text(), values=fields.String(validate=placeholders),
                              load_default=dict)
    stage_map = fields.Nested(StageMapSchema)
    stage_allow_backwards = fields.Boolean(load_default=False)

    @validates_schema
    def _one_way_per_secret(self, data, **kwargs):
        for secret in SECRETS:
            if secret in data and f"{secret}_env" in data:
                raise ValidationError(f"give {secret} or {secret}_env, not both", secret)

    @validates_schema
    def _crm_steps_need_ghl(self, data, **kwargs):
        has_ghl = ("ghl_api_key" in data or "ghl_api_key_env" in data) \
            and "ghl_location_id" in data
        for name in ("field_map", "call_fields", "stage_map"):
            if data.get(name) and not has_ghl:
                raise ValidationError("needs ghl_api_key (or ghl_api_key_env) and"
                                      " ghl_location_id", name)


def load_clients(env: Mapping[str, Any]) -> ClientDirectory:
    """Build the directory from the environment mapping (``config.py`` passes it in)."""
    default = _default_client(env)
    source, text = _clients_source(env)
    if text is None:
        return ClientDirectory([], default)
    try:
        entries = json.loads(text)
    except ValueError as exc:
        raise ClientConfigError(f"{source}: not valid JSON ({exc})") from None
    if not isinstance(entries, list):
        raise ClientConfigError(f"{source}: must be a JSON list of clients")
    clients = [_client(source, index, entry, env, default) for index, entry in enumerate(entries)]
    _check_unique(source, clients)
    return ClientDirectory(clients, default)


def _clients_source(env: Mapping[str, Any]) -> tuple[str, str | None]:
    path = str(env.get("CLIENTS_FILE") or "").strip()
    if path:
        try:
            return f"CLIENTS_FILE {path}", Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ClientConfigError(f"CLIENTS_FILE {path}: cannot be read ({exc.strerror})") \
                from None
    inline = str(env.get("CLIENTS_JSON") or "").strip()
    return "CLIENTS_JSON", inline or None


def _client(source: str, index: int, entry: Any, env: Mapping[str, Any],
            default: Client) -> Client:
    label = f"{source}: client #{index + 1}"
    if isinstance(entry, dict) and isinstance(entry.get("name"), str):
        label += f" ({entry['name']})"
    if not isinstance(entry, dict):
        raise ClientConfigError(f"{label}: must be a JSON object")
    try:
        data = _ClientSchema().load(entry)
    except ValidationError as exc:
        field_name, messages = next(iter(exc.normalized_messages().items()))
        raise ClientConfigError(f"{label}: field {field_name}: {_flatten(messages)}") from None
    for secret in SECRETS:
        variable = data.pop(f"{secret}_env", None)
        if variable:
            data[secret] = _env(env, variable)
            if not data[secret]:
                raise ClientConfigError(
                    f"{label}: field {secret}_env: environment variable {variable} is not set")
    data.setdefault("slack_bot_token", default.slack_bot_token)
    stage_map = data.pop("stage_map", None)
    if stage_map:
        data["stage_map"] = StageMap(
            stage_map["pipeline_id"], data_key=stage_map.get("data_key"),
            stages=MappingProxyType({k.strip().lower(): v for k, v in stage_map["stages"].items()}))
    return Client(
        **{**data, "assistant_ids": tuple(data["assistant_ids"]),
           "phone_number_ids": tuple(data["phone_number_ids"]),
           "ghl_incoming_webhook_urls": MappingProxyType(data["ghl_incoming_webhook_urls"]),
           "outcome_tags": MappingProxyType(data["outcome_tags"]),
           "field_map": MappingProxyType(data["field_map"]),
           "call_fields": MappingProxyType(data["call_fields"])})


def _default_client(env: Mapping[str, Any]) -> Client:
    urls = {kind: _env(env, f"GHL_INCOMING_WEBHOOK_URL_{kind.upper()}") for kind in WEBHOOK_KINDS}
    timezone = _env(env, "DEFAULT_TIMEZONE") or "UTC"
    try:
        _known_zone(timezone)
    except ValidationError as exc:
        raise ClientConfigError(f"DEFAULT_TIMEZONE: {_flatten(exc.messages)}") from None
    return Client(
        name=DEFAULT_NAME,
        ghl_api_key=_env(env, "GHL_API_KEY"),
        ghl_location_id=_env(env, "GHL_LOCATION_ID"),
        ghl_calendar_id=_env(env, "GHL_CALENDAR_ID"),
        vapi_assistant_id=_env(env, "VAPI_ASSISTANT_ID"),
        vapi_phone_number_id=_env(env, "VAPI_PHONE_NUMBER_ID"),
        default_country=(_env(env, "DEFAULT_COUNTRY") or "US").upper(),
        timezone=timezone,
        slack_channel_id=_env(env, "SLACK_CHANNEL_ID"),
        slack_bot_token=_env(env, "SLACK_BOT_TOKEN"),
        slack_webhook_url=_env(env, "SLACK_WEBHOOK_URL"),
        slack_upload_recording=_flag(env, "SLACK_UPLOAD_RECORDING"),
        ghl_incoming_webhook_urls=MappingProxyType({k: v for k, v in urls.items() if v}),
    )


def _unshared(pairs: Iterable[tuple[str | None, Client]]) -> dict[str, Client]:
    """``{id: client}`` for the ids exactly one client has."""
    found: dict[str, list[Client]] = {}
    for value, client in pairs:
        if value:
            found.setdefault(value, []).append(client)
    return {value: owners[0] for value, owners in found.items() if len(owners) == 1}


def _check_unique(source: str, clients: list[Client]) -> None:
    seen: dict[tuple[str, str], str] = {("name", DEFAULT_NAME): "the default client"}
    for client in clients:
        keys = [("name", client.name), *(("assistant id", a) for a in client.assistant_ids),
                *(("phone number id", p) for p in client.phone_number_ids)]
        for kind, value in keys:
            if (kind, value) in seen:
                raise ClientConfigError(
                    f"{source}: client {client.name}: {kind} {value!r} is already used by"
                    f" {seen[kind, value]}")
            seen[kind, value] = f"client {client.name}"
    # A secret must say whose it is: shared, it would make two clients one (never echoed).
    owners: dict[str, str] = {}
    for client in clients:
        for secret in ("webhook_token", "hmac_secret"):
            value = getattr(client, secret)
            if value in owners:
                raise ClientConfigError(f"{source}: client {client.name}: {secret} is the same"
                                        f" as client {owners[value]}'s")
            if value:
                owners[value] = client.name


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"Unknown time zone {name!r} (use an IANA name such as"
                              " America/New_York).") from None
    return True


def _env(env: Mapping[str, Any], name: str) -> str | None:
    value = str(env.get(name) or "").strip()
    return value or None


def _flag(env: Mapping[str, Any], name: str) -> bool:
    value = (_env(env, name) or "false").lower()
    if value not in ("true", "false"):
        raise ClientConfigError(f"{name} must be true or false (got {value!r})")
    return value == "true"


def _flatten(messages: Any) -> str:
    if isinstance(messages, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in messages.items())
    if isinstance(messages, list):
        return " ".join(_flatten(message) for message in messages)
    return str(messages)
