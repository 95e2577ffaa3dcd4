"""The ``StateStorage`` Flask extension: picks a backend when the app is created.

Choice, from ``Settings.storage_backend``: ``STATE_STORAGE`` if set, else Redis
(``REDIS_URL`` / ``KV_URL``), else the REST API (``KV_REST_API_URL`` +
``KV_REST_API_TOKEN``), else an in-process dict. The app's ``StateStore`` lives in
``app.extensions["state_storage"]``. A persistent backend that stops answering is
stood in for by an in-process dict (``fallback.py``) unless ``STATE_STORAGE_FALLBACK=none``.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app

from ..config import Settings
from .base import Backend, StorageError
from .fallback import with_fallback
from .memory import MemoryBackend
from .redis_backend import RedisBackend
from .rest import RestBackend
from .state import CallBelongsToAnotherClient, StateStore, check_id

__all__ = ["Backend", "CallBelongsToAnotherClient", "StateStorage", "StateStore", "StorageError",
           "check_id", "create_backend", "get_state", "state_storage"]

log = logging.getLogger(__name__)

BACKENDS: dict[str, type[MemoryBackend] | type[RedisBackend] | type[RestBackend]] = {
    backend.name: backend for backend in (MemoryBackend, RedisBackend, RestBackend)
}


def create_backend(settings: Settings) -> Backend:
    """Build (without connecting) the backend the settings pick."""
    return BACKENDS[settings.storage_backend].from_settings(settings)


class StateStorage:
    """Flask extension; holds no app state itself (Flask's extension guide)."""

    def __init__(self, app: Flask | None = None, settings: Settings | None = None):
        if app is not None:
            self.init_app(app, settings)

    def init_app(self, app: Flask, settings: Settings | None = None) -> None:
        if "state_storage" in app.extensions:
            raise RuntimeError("StateStorage is already registered on this app")
        settings = settings or app.config["SETTINGS"]
        backend = with_fallback(create_backend(settings), settings)
        if backend.persistent:
            log.info(backend.startup_message)
        else:
            log.warning(backend.startup_message)
        app.extensions["state_storage"] = StateStore(
            backend, prefix=settings.storage_prefix, ttl=settings.storage_ttl
        )


def get_state() -> StateStore:
    """The current app's state store."""
    return current_app.extensions["state_storage"]


state_storage = StateStorage()
