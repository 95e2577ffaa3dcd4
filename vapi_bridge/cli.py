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

from . import checks, pipeline, vapi_setup, vapi_setup_report
from .context import current_context
from .ids import check_url_id
from .integrations import DeliveryError
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
            fix = checks.store_fix(current_app.config["SETTINGS"])
            raise click.ClickException(f"the store is unreachable ({exc}) -> {fix}") from None
    return wrapper


# check
@cli.command()
def check() -> None:
    """Try the store and every configured service once; exit 1 if any fails."""
    results = checks.lines(current_context())
    for line in results:
        click.echo(line)
    if any(line.startswith("FAIL") for line in results):
        sys.exit(1)


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
