"""The status page at ``/``: store, clients, outbox and the last calls (ADMIN_TOKEN).

Without ``ADMIN_TOKEN`` every route here answers 404, as if it did not exist. With it:
HTTP Basic (any user, the token as password) or a session from ``/login``: a signed cookie
carrying a session id that the state store holds until it expires or ``/logout`` deletes it.
Sign-in attempts are limited per address (``signin.py``). Every POST carries the session's
CSRF token. The page never fails because the store is down: it says so instead.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask.sessions import SecureCookieSessionInterface
from werkzeug.wrappers import Response

from . import chart, pipeline, render
from .context import Context, current_context
from .logs import redact
from .outbox import STEPS
from .signin import check_admin_token, same
from .storage import StorageError, get_state

log = logging.getLogger(__name__)
bp = Blueprint("admin", __name__, template_folder="templates")

REALM = 'Basic realm="vapi-bridge"'
SESSION_SECONDS = 12 * 3600  # a signed-in browser signs in again after this
SESSIONS = "admin-session"  # the session ids' key kind: <prefix>:admin-session:<sha256>
LIST_JOBS = 20  # parked and dead jobs listed on the page
RETRY_LIMIT = 200  # jobs one click retries...
RETRY_SECONDS = 20.0  # ...and no job started after this: the request has to finish
# Inline CSS only, nothing loaded from elsewhere, never inside another site's frame.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


class AdminSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie: SameSite=Lax, and Secure whenever the request came over https."""

    def get_cookie_samesite(self, app: Flask) -> str:
        return super().get_cookie_samesite(app) or "Lax"

    def get_cookie_secure(self, app: Flask) -> bool:
        # The forwarded scheme only ever adds the flag, so trusting it costs nothing.
        forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip()
        return super().get_cookie_secure(app) or request.is_secure or forwarded == "https"


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    app = state.app
    token = app.config["SETTINGS"].admin_token
    if token and not app.secret_key:
        # Derived, so a new ADMIN_TOKEN also ends every session signed with the old one.
        app.secret_key = hmac.new(token.encode(), b"vapi-bridge admin session",
                                  hashlib.sha256).hexdigest()
    app.session_interface = AdminSessionInterface()
    app.permanent_session_lifetime = timedelta(seconds=SESSION_SECONDS)


@bp.before_request
def guard() -> Response | None:
    token = current_app.config["SETTINGS"].admin_token
    if not token:
        abort(404)
    if request.endpoint != "admin.login":
        denied = _access()
        if denied is not None:
            return denied
    if request.method == "POST":
        _check_csrf()
    return None


@bp.after_request
def add_headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"  # frame-ancestors for older browsers
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@bp.get("/")
def index() -> str:
    ctx = current_context()
    return render_template("admin/status.html", csrf=csrf_token(), **_snapshot(ctx),
                           clients=_clients(ctx), auth_modes=ctx.settings.auth_modes,
                           version=current_app.config["VERSION"], now=time.time(),
                           by_session=g.get("admin_session", False))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | tuple[str, int, dict[str, str]] | str:
    if request.method == "GET":
        return render_template("admin/login.html", csrf=csrf_token())
    verdict = check_admin_token(request.form.get("password", ""))
    if verdict.retry_after is not None:
        return _too_many(verdict.retry_after)
    if not verdict.ok:
        return render_template("admin/login.html", csrf=csrf_token(),
                               error="Wrong password."), 401
    _end_session()  # a browser signing in again leaves no second session behind
    try:
        session_id = get_state().open_session(SESSIONS, SESSION_SECONDS)
    except StorageError as exc:
        log.warning("[ADMIN] Sign-in without a session, store unavailable (%s)", error_kind(exc))
        return render_template("admin/login.html", csrf=csrf_token(),
                               error="The state store is unavailable, so no session can be kept:"
                                     " sign in with HTTP Basic instead."), 503
    session.clear()
    session.permanent = True
    session["sid"] = session_id
    csrf_token()  # a fresh one for the signed-in session
    log.info("[ADMIN] Signed in from %s", request.remote_addr)
    return redirect(url_for(".index"), 303)


@bp.post("/logout")
def logout() -> Response:
    _end_session()
    session.clear()
    return redirect(url_for(".login"), 303)


@bp.post("/admin/retry")
def retry() -> Response:
    """Run every parked job now, due or not; with ``dead=1``, the dead letters instead."""
    dead = request.form.get("dead") == "1"
    what = "dead letters" if dead else "parked jobs"
    ctx = current_context()
    try:
        summary = pipeline.drain_outbox(ctx, include_future=not dead, dead=dead,
                                        limit=RETRY_LIMIT,
                                        deadline=time.monotonic() + RETRY_SECONDS)
    except StorageError as exc:
        log.warning("[ADMIN] Retry of %s failed, store unavailable (%s)", what, error_kind(exc))
        flash(f"Store unavailable: the {what} were not retried.", "error")
        return redirect(url_for(".index"), 303)
    log.info("[ADMIN] Retried %s: %s", what, summary)
    if getattr(ctx.state.backend, "degraded", False):
        flash(f"Store unavailable: retried this process's in-memory {what} only: {summary}",
              "error")
    else:
        flash(f"Retried {what}: {summary}", "ok")
    return redirect(url_for(".index"), 303)


# Access
def _access() -> tuple[str, int, dict[str, str]] | None:
    """None when signed in (a live session, or Basic with the token), else the answer."""
    if _session_live():
        g.admin_session = True
        return None
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return _unauthorized()
    verdict = check_admin_token(auth.password or "")
    if verdict.retry_after is not None:
        return _too_many(verdict.retry_after)
    return None if verdict.ok else _unauthorized()


def _session_live() -> bool:
    """Whether the cookie names a session the store still holds (not logged out, not expired)."""
    session_id = session.get("sid")
    if not isinstance(session_id, str):
        return False
    try:
        return get_state().has_session(SESSIONS, session_id)
    except StorageError as exc:
        log.warning("[ADMIN] Session not checked, store unavailable (%s)", error_kind(exc))
        return False


def _end_session() -> None:
    """Revoke this browser's session in the store: its cookie opens nothing any more."""
    session_id = session.get("sid")
    if not isinstance(session_id, str):
        return
    try:
        get_state().close_session(SESSIONS, session_id)
    except StorageError as exc:
        log.warning("[ADMIN] Session not revoked, store unavailable (%s): it expires with its"
                    " TTL", error_kind(exc))


def _unauthorized() -> tuple[str, int, dict[str, str]]:
    """Browsers ask for Basic credentials; cancelling shows the sign-in form instead."""
    return (render_template("admin/login.html", csrf=csrf_token()), 401,
            {"WWW-Authenticate": REALM})


def _too_many(retry_after: int) -> tuple[str, int, dict[str, str]]:
    """The sign-in form, saying when to try again; no Basic challenge (nothing to retry yet)."""
    minutes = -(-retry_after // 60)
    error = (f"Too many failed sign-ins from your address: try again in {minutes} minute"
             f"{'s' if minutes > 1 else ''}.")
    return (render_template("admin/login.html", csrf=csrf_token(), error=error), 429,
            {"Retry-After": str(retry_after)})


def csrf_token() -> str:
    """This session's CSRF token (Basic users get a session just for it)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def _check_csrf() -> None:
    expected = session.get("csrf")
    if not expected or not same(request.form.get("csrf_token", ""), expected):
        log.warning("[ADMIN] POST %s without a valid CSRF token", request.path)
        abort(400, description="Missing or wrong CSRF token: reload the page and try again.")


# What the page shows
def _snapshot(ctx: Context) -> dict[str, Any]:
    """Store status, outbox counts and jobs, recent calls; ``store_error`` if it failed."""
    storage = ctx.state.status()
    data: dict[str, Any] = {"storage": storage, "store_error": None, "counts": None,
                            "parked": [], "dead": [], "calls": [], "picture": None}
    if not storage["available"] and not storage.get("degraded"):
        # No in-process stand-in: each read would only wait for the same failure.
        data["store_error"] = "store unavailable"
        return data
    try:
        outbox = pipeline.outbox(ctx)
        data["counts"] = outbox.counts()
        data["parked"] = [job.summary() for job in outbox.jobs(limit=LIST_JOBS)]
        data["dead"] = [job.summary() for job in outbox.jobs(dead=True, limit=LIST_JOBS)]
        data["calls"] = [_call(call) for call in ctx.state.recent_calls(50)]
        data["picture"] = chart.last_hours(ctx.state.hourly(chart.NAMES, chart.HOURS))
    except StorageError as exc:
        log.warning("[ADMIN] Store unavailable while reading the status page (%s)", error_kind(exc))
        data["store_error"] = "store unavailable"
    return data


def error_kind(exc: StorageError) -> str:
    """The driver's error type only: its message may carry the store's address."""
    return type(exc.__cause__ or exc).__name__


def _call(metadata: dict[str, Any]) -> dict[str, Any]:
    """The few fields of a call the page shows; the number reduced to its last 4 digits."""
    delivery = metadata.get("delivery") or {}
    return {"call_id": metadata["call_id"], "client": metadata.get("client") or "",
            "outcome": metadata.get("outcome") or "", "ended_at": metadata.get("ended_at"),
            "duration": render.duration(metadata.get("duration_seconds")),
            "caller": mask_number(metadata.get("customer_number")),
            "steps": {step: delivery.get(step) or {} for step in STEPS}}


def _clients(ctx: Context) -> list[dict[str, Any]]:
    """Which integrations each client has (whether set, never the values)."""
    vapi = bool(ctx.settings.vapi_api_key)
    return [{"name": client.name, "assistants": len(client.assistant_ids),
             "ghl": client.has_ghl, "slack": client.has_slack, "vapi_api": vapi}
            for client in ctx.settings.clients]


def mask_number(number: str | None) -> str:
    """``+14155550123`` -> ``•••0123``."""
    digits = "".join(ch for ch in number or "" if ch.isdigit())
    return f"•••{digits[-4:]}" if digits else "—"


@bp.app_template_filter("admin_when")
def _when(value: float | str | None) -> str:
    """A Unix time or an ISO 8601 string as ``2026-11-25 10:02 UTC``."""
    if not value:
        return "—"
    try:
        moment = (datetime.fromtimestamp(value, UTC) if isinstance(value, int | float)
                  else datetime.fromisoformat(value).astimezone(UTC))
    except (TypeError, ValueError):
        return str(value)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


@bp.app_template_filter("admin_redact")
def _redact(text: str | None) -> str:
    return redact(text) if text else ""
