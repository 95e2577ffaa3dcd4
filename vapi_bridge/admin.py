"""The status page at ``/``: store, clients, outbox and the last calls (ADMIN_TOKEN)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("admin", __name__, template_folder="templates")
