"""Operations commands: ``flask --app wsgi vapi-bridge <command>``.

``check`` tries every configured service once; ``vapi-setup`` makes Vapi's credential, tools
and assistants match (``vapi_setup.py``); ``replay`` delivers a call read from Vapi;
``outbox`` lists parked (or dead) deliveries; ``retry`` runs one pass over them; ``worker``
runs a pass every ``WORKER_INTERVAL_SECONDS`` until SIGTERM/SIGINT.
"""

from __future__ import annotations

import functools
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from . import crm_steps, pipeline, vapi_setup, vapi_setup_report
from .clients import DEFAULT_NAME, Client
from .config import Settings
from .context import Context, current_context
from .ids import check_url_id
from .integrations import DeliveryError, ghl_scopes
from .outbox import Job
from .storage import CallBelongsToAnotherClient, StorageError

log = logging.getLogger(__name__)
cli = AppGroup("vapi-bridge", help="Operate vapi-bridge: check, vapi-setup, replay, outbox,"
               " retry, worker.")


def register(app: Flask) -> None:
    app.cli.add_command(cli)


def store_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """An unreachable store ends the command with exit status 1 and the variable to check.

    The store is pinged first: an in-process fallback standing in for a store that is
    down would show this process's empty outbox as if it were the real one.
    """
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            current_context().state.backend.ping()
            return command(*args, **kwargs)
        except StorageError as exc:
            fix = _store_fix(current_app.config["SETTINGS"])
            raise click.ClickException(f"the store is unreachable ({exc}) -> {fix}") from None
    return wrapper


# check
@cli.command()
def check() -> None:
    """Try the store and every configured service once; exit 1 if any fails."""
    ctx = current_context()
    results = [_check_store(ctx)]
    for client in ctx.settings.clients:
        results += [*_check_ghl(ctx, client), *_check_slack(ctx, client)]
    results.append(_check_vapi(ctx))
    if results[-1].startswith("OK"):  # per assistant: what vapi-setup would change
        results += vapi_setup_report.check(ctx.integrations.vapi, ctx.settings)
    for line in results:
        click.echo(line)
    if any(line.startswith("FAIL") for line in results):
        sys.exit(1)


def _check_store(ctx: Context) -> str:
    status = ctx.state.status()
    if not status["available"]:
        return f"FAIL store: {status['type']} does not answer -> {_store_fix(ctx.settings)}"
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


# vapi-setup
@cli.command("vapi-setup")
@click.option("--url", help="The bridge's public https://host (default PUBLIC_URL).")
@click.option("--client", "client_name", help="Only this client (default: every client with"
              " assistant_ids).")
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
@click.option("--yes", is_flag=True, help="Apply without asking.")
@click.option("--keep-server-messages", is_flag=True, help="Leave serverMessages as they are.")
def vapi_setup_command(url: str | None, client_name: str | None, dry_run: bool, yes: bool,
                       keep_server_messages: bool) -> None:
    """Create or update each client's Vapi credential and tools, and point its assistants here."""
    ctx = current_context()
    if ctx.integrations.vapi is None:
        raise click.ClickException("Vapi is not configured -> set VAPI_API_KEY")
    try:
        ok = vapi_setup_report.run(ctx.integrations.vapi, ctx.settings, url, client_name,
                                   dry_run=dry_run, yes=yes, keep=keep_server_messages)
    except vapi_setup.SetupError as exc:
        raise click.ClickException(str(exc)) from None
    if not ok:
        sys.exit(1)


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


def _store_fix(settings: Settings) -> str:
    backend = settings.storage_backend
    if backend == "redis":
        return f"check {settings.redis_url_var} and that Redis is running"
    if backend == "kv-rest":
        return f"check {settings.rest_url_var} and its token"
    return "check STATE_STORAGE"


# replay
@cli.command()
@click.argument("call_id")
@store_errors
def replay(call_id: str) -> None:
    """Read CALL_ID from Vapi and deliver it again (safe to repeat)."""
    try:
        check_url_id(call_id, "callId")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="CALL_ID") from None
    ctx = current_context()
    if ctx.integrations.vapi is None:
        raise click.ClickException("Vapi is not configured -> set VAPI_API_KEY")
    try:
        replayed = pipeline.replay(call_id, ctx)
    except DeliveryError as exc:
        raise click.ClickException(f"Vapi unreachable ({exc}) -> check VAPI_API_BASE_URL,"
                                   " VAPI_API_KEY and the network") from None
    except CallBelongsToAnotherClient as exc:
        raise click.ClickException(f"call {call_id} resolves to client {exc.client} but belongs"
                                   f" to client {exc.owner}: nothing done") from None
    if replayed is None:
        raise click.ClickException(f"Vapi has no call {call_id}")
    client, delivery = replayed
    click.echo(f"call {call_id} client {client.name}")
    for step, result in delivery.items():
        click.echo(f"  {step:<6} {_describe(result)}")


def _describe(result: dict[str, Any]) -> str:
    text = f"{result['status']} (attempts {result['attempts']})"
    if result.get("due_at"):
        text += f" due {_iso(result['due_at'])}"
    return f"{text}: {result['last_error']}" if result.get("last_error") else text


# outbox
@cli.command()
@click.option("--dead", is_flag=True, help="The dead letters instead of the parked jobs.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per job and line.")
@store_errors
def outbox(dead: bool, as_json: bool) -> None:
    """List parked deliveries (soonest first) or dead letters (oldest first)."""
    box = pipeline.outbox(current_context())
    jobs, counts = box.jobs(dead=dead), box.counts()
    count_line = " ".join(f"{name}={value}" for name, value in counts.items())
    if as_json:
        for job in jobs:
            click.echo(json.dumps(job.summary(), sort_keys=True))
        click.echo(count_line, err=True)  # stdout stays pure JSON lines
        return
    when = "DIED AT" if dead else "DUE AT"
    click.echo(f"{'CALL ID':<38} {'STEP':<9} {'CLIENT':<14} {'TRIES':>5} {when:<20} LAST ERROR")
    for job in jobs:
        click.echo(_row(job))
    click.echo(count_line)


def _row(job: Job) -> str:
    at = _iso(job.dead_at if job.dead_at else job.due_at)
    error = (job.last_error or "")[:70]
    return (f"{job.call_id:<38} {job.step:<9} {job.client[:14]:<14} {job.attempts:>5} {at:<20}"
            f" {error}")


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# retry
@cli.command()
@click.option("--now", is_flag=True, help="Every parked job, not only those due.")
@click.option("--dead", is_flag=True, help="Revive the dead letters and run them too.")
@store_errors
def retry(now: bool, dead: bool) -> None:
    """One pass over the outbox. Exit 0 when the pass ran, even if jobs were parked again."""
    ctx = current_context()
    box = pipeline.outbox(ctx)
    counts = box.counts()
    total = (counts["parked"] if now else counts["due"]) + (counts["dead"] if dead else 0)
    with click.progressbar(length=total, label=f"Retrying {total} job(s)", file=sys.stderr,
                           show_pos=True) as bar:
        summary = pipeline.drain_outbox(ctx, include_future=now, dead=dead,
                                        progress=lambda job, outcome: bar.update(1))
    click.echo(f"Retried: {summary}")
    click.echo("Outbox now: " + " ".join(f"{k}={v}" for k, v in box.counts().items()))


# worker
@cli.command()
@click.option("--once", is_flag=True, help="One pass, then exit.")
def worker(once: bool) -> None:
    """Drain the outbox every WORKER_INTERVAL_SECONDS until SIGTERM or SIGINT."""
    interval = current_app.config["SETTINGS"].worker_interval
    stop = threading.Event()
    # Only a flag: the pass under way finishes, then the loop ends.
    previous = {signum: signal.signal(signum, lambda *_: stop.set())
                for signum in (signal.SIGTERM, signal.SIGINT)}
    log.info("[OUTBOX] Worker started: a pass every %ss", interval)
    try:
        for _ in _passes(stop, interval, once):
            _one_pass()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    log.info("[OUTBOX] Worker stopping")


def _passes(stop: threading.Event, interval: float, once: bool) -> Iterator[None]:
    while not stop.is_set():
        yield
        if once or stop.wait(interval):
            return


def _one_pass() -> None:
    """A pass that cannot kill the worker: an outage or a bug is logged, the next pass tries."""
    ctx = current_context()
    try:
        ctx.state.backend.ping()  # not a pass over an in-process fallback's empty outbox
        pipeline.drain_outbox(ctx)
    except StorageError as exc:
        log.error("[OUTBOX] Store unavailable, trying again next pass: %s", exc)
    except Exception:
        log.exception("[OUTBOX] Pass failed, trying again next pass")
