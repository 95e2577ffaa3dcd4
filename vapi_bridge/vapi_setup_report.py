"""``vapi-setup`` run and said: the plan (dry run, prompt), the summary, ``check``'s drift."""

from __future__ import annotations

import click

from .config import Settings
from .integrations.vapi_api import VapiApi
from .vapi_setup import Change, SetupError, apply, assistants_of, plan, webhook_url
from .vapi_setup import clients_to_set_up as chosen


def run(vapi: VapiApi, settings: Settings, url: str | None, client_name: str | None, *,
        dry_run: bool, yes: bool, keep: bool) -> bool:
    """The command: plan, print, ask (unless ``yes``), apply. False if anything failed."""
    clients = chosen(settings, client_name)
    changes = plan(vapi, settings, clients, webhook_url(url or settings.public_url), keep)
    for line in render(changes):
        click.echo(line)
    pending = sum(change.pending for change in changes)
    if pending and not dry_run:
        if yes or click.confirm(f"Apply {pending} change(s) to Vapi?"):
            apply(vapi, changes)
            for line in summary(changes):
                click.echo(line)
        else:
            click.echo("Nothing written.")
    return not any(change.failed for change in changes)


def render(changes: list[Change]) -> list[str]:
    """The plan, client by client: what would be created, changed or is wrong."""
    if not any(c.pending or c.failed for c in changes):
        return ["nothing to change"]
    lines = []
    for client in dict.fromkeys(c.client for c in changes):
        mine = [c for c in changes if c.client == client]
        lines.append(f"client {client}:")
        lines += [_line(c) for c in mine if c.action != "ok"]
        unchanged = sum(c.action == "ok" for c in mine)
        if unchanged:
            lines.append(f"  ({unchanged} unchanged)")
    return lines


def summary(changes: list[Change]) -> list[str]:
    """After ``apply``: how many changes were written, and each one that was not."""
    done = sum(c.status == "applied" for c in changes)
    not_done = [c for c in changes if c.failed]
    lines = [f"applied {done} of {done + len(not_done)} change(s)"]
    if not_done:
        lines.append(f"not applied {len(not_done)}:")
        lines += [f"  {_short(c)}: {c.status or '; '.join(c.detail)}" for c in not_done]
    return lines


def check(vapi: VapiApi, settings: Settings) -> list[str]:
    """Per assistant, whether Vapi matches what ``vapi-setup`` would set (reads only)."""
    clients = [c for c in settings.clients if assistants_of(c)]
    if not clients:
        return []
    try:
        url = webhook_url(settings.public_url) if settings.public_url else None
        return drift(plan(vapi, settings, clients, url))
    except SetupError as exc:
        return [f"FAIL vapi-setup: {exc}"]


def drift(changes: list[Change]) -> list[str]:
    """``check``'s lines: per assistant, OK or FAIL with what differs."""
    lines = []
    for client in dict.fromkeys(c.client for c in changes):
        mine = [c for c in changes if c.client == client]
        shared = [c for c in mine if c.kind != "assistant" and c.action != "ok"]
        assistants = [c for c in mine if c.kind == "assistant"] or shared[:1]
        for change in assistants:
            problems = [f"{c.action} {c.kind} {c.name}"
                        + (f": {'; '.join(c.detail)}" if c.action == "fail" else "")
                        for c in shared]
            if change.kind == "assistant" and change.action != "ok":
                problems.append("; ".join(change.detail))
            name = f"vapi-setup ({client}) assistant {change.name}" if change.kind == \
                "assistant" else f"vapi-setup ({client})"
            if not problems:
                lines.append(f"OK   {name}: server URL, credential, tools, server messages")
            else:
                fix = "" if any(c.action == "fail" for c in (*shared, change)) \
                    else " -> run vapi-setup"
                lines.append(f"FAIL {name}: {'; '.join(problems)}{fix}")
    return lines


def _line(change: Change) -> str:
    detail = f": {'; '.join(change.detail)}" if change.detail else ""
    return f"  {change.action:<7}{change.kind} {change.name}{detail}"


def _short(change: Change) -> str:
    return f"{change.action} {change.kind} {change.name} ({change.client})"
