"""``/cron/retry``: drain the outbox when a scheduler (Vercel cron) asks.

Vercel cron calls the path with GET and ``Authorization: Bearer <CRON_SECRET>``; POST
is accepted too, for other schedulers. The pass is bounded (``CRON_JOB_LIMIT`` jobs, no
job started after ``PIPELINE_DEADLINE_SECONDS``) so the function never times out; what is
left stays due for the next call. A store outage is the app's usual 503.
"""

from __future__ import annotations

import hmac
import time

from flask import Blueprint, jsonify, request

from . import pipeline
from .context import current_context

bp = Blueprint("cron", __name__)
CRON_JOB_LIMIT = 200


@bp.route("/cron/retry", methods=["GET", "POST"])
def retry():
    ctx = current_context()
    secret = ctx.settings.cron_secret
    if not secret:
        # Not 404: a scheduler's log should say what to fix (as /vapi/pull-metadata does
        # without VAPI_API_KEY). Nothing runs without the secret.
        return jsonify(error="cron_not_configured",
                       message="Set CRON_SECRET to enable /cron/retry."), 503
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {secret}".encode()):
        return jsonify(error="unauthorized"), 401
    # The real store, or 503: not a pass over an in-process fallback's empty outbox.
    ctx.state.backend.ping()
    deadline = time.monotonic() + ctx.settings.pipeline_deadline
    summary = pipeline.drain_outbox(ctx, limit=CRON_JOB_LIMIT, deadline=deadline)
    return jsonify(delivered=summary.delivered, parked=summary.parked, dead=summary.dead,
                   busy=summary.busy, vanished=summary.vanished,
                   outbox=pipeline.outbox(ctx).counts())
