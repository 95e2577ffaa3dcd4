"""``POST /cron/retry``: drain the outbox when a scheduler (Vercel cron) asks."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("cron", __name__)
