"""vapi-bridge: a Vapi Server URL that turns calls into GoHighLevel and Slack records."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import admin, calls, cli, cron, errors, handlers, metrics, outbound, webhooks
from .bodytimeout import BodyReadDeadline
from .config import check_webhook_auth, load_settings
from .integrations import Integrations
from .logs import configure_logging, install_request_ids
from .storage import state_storage

__version__ = "0.1.0"
log = logging.getLogger(__name__)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the environment; ``config`` overrides variables by name."""
    settings = load_settings(config)
    # Before Flask(): app.logger must not add a handler of its own.
    configure_logging(settings.log_level, settings.log_format)

    app = Flask(__name__)
    app.config.from_mapping({k: v for k, v in (config or {}).items() if k.isupper()})
    app.config["SETTINGS"] = settings
    app.config["VERSION"] = __version__
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    open_webhook = check_webhook_auth(settings)  # raises if an open webhook could do harm
    if open_webhook:
        log.warning("[WEBHOOK] %s", open_webhook)
    # A slow body holds no thread: read within BODY_READ_TIMEOUT_SECONDS, else 408.
    app.wsgi_app = BodyReadDeadline(app.wsgi_app, settings.body_read_timeout)  # type: ignore
    if settings.trusted_proxies:  # the client's address and scheme as the proxies saw them
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore

    install_request_ids(app)
    state_storage.init_app(app)
    app.extensions["integrations"] = Integrations(settings)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(outbound.bp)
    app.register_blueprint(cron.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(calls.bp)
    metrics.init_app(app, handled_types=handlers.HANDLERS)
    cli.register(app)
    errors.register(app)
    return app
