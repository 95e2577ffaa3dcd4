"""The floor for `make bench`: bare Flask plus the least any correct handler of a message we
act on must do, read the body as JSON and write to Redis once (one redis-py round trip), and
nothing else: no authentication, validation, log line or answer beyond ``{}``.

Between this floor and bare Flask is what the store write itself costs; between the app and
this floor is everything the app adds. Served like the baseline, with ``REDIS_URL``
(``gunicorn 'bench.floor_app:create()'``).
"""

import json
import os

import redis
from flask import Flask, request

ACTED_ON = ("end-of-call-report", "status-update")


def create(redis_url: str | None = None) -> Flask:
    """The floor app on ``redis_url`` (default: ``REDIS_URL``)."""
    app = Flask(__name__)
    store = redis.Redis.from_url(redis_url or os.environ["REDIS_URL"], decode_responses=True)
    prefix = os.environ.get("STATE_STORAGE_PREFIX", "floor")

    @app.post("/vapi/webhook")
    def webhook() -> dict:
        message = json.loads(request.get_data())["message"]
        if message["type"] in ACTED_ON:
            store.set(f"{prefix}:floor:{message['call']['id']}", message["type"], ex=60)
        return {}

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    return app
