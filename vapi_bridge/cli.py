"""Operations commands: ``flask --app wsgi vapi-bridge <command>``."""

from __future__ import annotations

from flask import Flask
from flask.cli import AppGroup

cli = AppGroup("vapi-bridge", help="Operate vapi-bridge: check, replay, outbox, retry, worker.")


def register(app: Flask) -> None:
    app.cli.add_command(cli)
