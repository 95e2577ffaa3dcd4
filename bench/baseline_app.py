"""The ceiling for `make bench`: a bare Flask app that reads the POST and answers ``{}``.

Served by gunicorn with the same gunicorn.conf.py as the real app
(``gunicorn bench.baseline_app:app``).
"""

from flask import Flask, request

app = Flask(__name__)


@app.post("/vapi/webhook")
def webhook() -> dict:
    request.get_data()
    return {}


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}
