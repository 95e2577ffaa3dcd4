"""``check``'s lines: the store and every configured service tried once, each line
``OK``/``WARN``/``FAIL``/``SKIP`` with what to fix; nothing is written anywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import crm_steps, vapi_setup_report
from .clients import DEFAULT_NAME, Client
from .config import Settings
from .context import Context
from .integrations import DeliveryError, ghl_scopes


def lines(ctx: Context) -> list[str]:
    """Every check's line, in order: store, then per client GoHighLevel and Slack, then Vapi
    (and per assistant what vapi-setup would change)."""
    results = [_check_store(ctx)]
    for client in ctx.settings.clients:
        results += [*_check_ghl(ctx, client), *_check_slack(ctx, client)]
    results.append(_check_vapi(ctx))
    if results[-1].startswith("OK"):
        results += vapi_setup_report.check(ctx.integrations.vapi, ctx.settings)
    return results


def _check_store(ctx: Context) -> str:
    status = ctx.state.status()
    if not status["available"]:
        return f"FAIL store: {status['type']} does not answer -> {store_fix(ctx.settings)}"
    if not status["persistent"]:
        return ("OK   store: memory (lost on restart; set REDIS_URL or KV_REST_API_URL"
                " to keep calls and parked deliveries)")
    return f"OK   store: {status['type']} ({status['latency_ms']} ms)"


def _check_ghl(ctx: Context, client: Client) -> list[str]:
    """Each read scope the client's features need, proved by a read; the write scopes named."""
    ghl = ctx.integrations.ghl(client)
    if ghl is None:
        return [f"SKIP ghl ({client.name}): not configured"]
    lines = []
    reads = ghl_scopes.needed(client, "reads")
    for index, (scope, needing) in enumerate(reads.items()):
        name = f"ghl ({client.name}) {scope} ({_names(needing)})"
        try:
            detail = ghl_scopes.prove(ghl, client, scope)
        except (DeliveryError, ValueError) as exc:
            status = "WARN" if all(f.optional for f in needing) else "FAIL"
            lines.append(f"{status} {name}: {exc} -> {_scope_fix(client, scope, exc, index == 0)}")
            if index == 0 or getattr(exc, "retryable", False):
                # A wrong token or location, or GoHighLevel unreachable: the other reads
                # would say the same.
                rest = ", ".join(list(reads)[index + 1:])
                if rest:
                    lines.append(f"SKIP ghl ({client.name}) {rest}: not tried")
                break
            continue
        lines.append(f"OK   {name}" + (f": {detail}" if detail else ""))
    else:  # no read found the token or GoHighLevel broken: the maps are worth checking
        lines += crm_steps.check_maps(ghl, client)
    for scope, needing in ghl_scopes.needed(client, "writes").items():
        lines.append(f"SKIP ghl ({client.name}) {scope} ({_names(needing)}):"
                     " not verifiable without writing")
    return lines


def _names(features: list[ghl_scopes.Feature]) -> str:
    return ", ".join(feature.name for feature in features)


def _scope_fix(client: Client, scope: str, exc: Exception, first: bool) -> str:
    if getattr(exc, "retryable", False):
        return "GoHighLevel unreachable: check GHL_API_BASE_URL and the network"
    refused = getattr(exc, "status", None) in (401, 403)
    if scope == "calendars.readonly" and not refused:  # the calendar itself is not there
        return _client_fix(client, "GHL_CALENDAR_ID", "ghl_calendar_id")
    if first or not refused:
        # The first read fails alike for a wrong token, a wrong location or a missing scope.
        return _client_fix(client, "GHL_API_KEY and GHL_LOCATION_ID",
                           "ghl_api_key and ghl_location_id") + f" (a token with {scope})"
    token = ("GHL_API_KEY" if client.name == DEFAULT_NAME
             else f"ghl_api_key of client {client.name!r}")
    fix = f"add the scope {scope} to the token in {token}"
    if scope == "locations/customFields.readonly":
        fix += " (until then custom fields named by key in call metadata are dropped)"
    return fix


def _check_slack(ctx: Context, client: Client) -> list[str]:
    name = f"slack ({client.name})"
    slack = ctx.integrations.slack(client)
    if slack is None:
        return [f"SKIP {name}: not configured"]
    if client.slack_webhook_url:
        return [f"SKIP {name}: an incoming webhook cannot be tested without posting a message",
                *([f"WARN {name} files:write (recording uploads): an incoming webhook cannot"
                   " upload files -> use a bot token (xoxb-..., scopes chat:write, files:write)"]
                  if client.slack_upload_recording else [])]
    answers: list[dict[str, Any]] = []

    def identify() -> str:
        answers.append(slack.auth_test())
        return f"team {answers[0].get('team')}, bot user {answers[0].get('user')}"

    lines = [_probe(name, identify,
                    unreachable="Slack unreachable: check SLACK_API_BASE_URL and the network",
                    refused=_client_fix(client, "SLACK_BOT_TOKEN (xoxb-..., scope chat:write)",
                                        "slack_bot_token"))]
    if answers and client.uploads_recording:
        lines.append(_upload_scope(client, answers[0].get("scopes")))
    return lines


def _upload_scope(client: Client, scopes: list[str] | None) -> str:
    """Whether the token may upload the recordings (auth.test's x-oauth-scopes header)."""
    name = f"slack ({client.name}) files:write (recording uploads)"
    if scopes is None:
        return f"SKIP {name}: not verifiable (Slack sent no x-oauth-scopes header)"
    if "files:write" in scopes:
        return f"OK   {name}"
    token = ("SLACK_BOT_TOKEN" if client.name == DEFAULT_NAME
             else f"slack_bot_token of client {client.name!r}")
    return (f"FAIL {name}: the token lacks files:write -> add the scope files:write to the"
            f" token in {token} (reinstall the Slack app), or turn slack_upload_recording off")


def _check_vapi(ctx: Context) -> str:
    vapi = ctx.integrations.vapi
    if vapi is None:
        return "SKIP vapi: VAPI_API_KEY not set (no gap filling, replay or outbound calls)"
    return _probe("vapi", lambda: vapi.check() or "",
                  unreachable="Vapi unreachable: check VAPI_API_BASE_URL and the network",
                  refused="set VAPI_API_KEY to a Vapi private API key")


def _probe(name: str, call: Callable[[], str], *, unreachable: str, refused: str) -> str:
    """One outside service tried once: OK with what ``call`` says, or FAIL with the fix."""
    try:
        detail = call()
    except DeliveryError as exc:
        return f"FAIL {name}: {exc} -> {unreachable if exc.retryable else refused}"
    return f"OK   {name}: {detail}" if detail else f"OK   {name}"


def _client_fix(client: Client, default_vars: str, client_fields: str) -> str:
    if client.name == DEFAULT_NAME:
        return f"set {default_vars}"
    return f"fix {client_fields} of client {client.name!r} in CLIENTS_JSON / CLIENTS_FILE"


def store_fix(settings: Settings) -> str:
    backend = settings.storage_backend
    if backend == "redis":
        return f"check {settings.redis_url_var} and that Redis is running"
    if backend == "kv-rest":
        return f"check {settings.rest_url_var} and its token"
    return "check STATE_STORAGE"
