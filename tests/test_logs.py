"""Logs: JSON lines with request and call ids, and redaction of secrets and PII in one place."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.vapi.payloads import EOCR_CURRENT, STATUS_UPDATE
from vapi_bridge import create_app
from vapi_bridge.logs import redact

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("text", "expected"), [
    ("Authorization: Bearer tok-3f9a", "Authorization: Bearer [redacted]"),
    ("POST /vapi/webhook?token=s3cret&x=1", "POST /vapi/webhook?token=[redacted]&x=1"),
    ("slack xoxb-1234-abcd failed", "slack [redacted] failed"),
    ("ghl pit-9a8b-77 refused", "ghl [redacted] refused"),
    ("caller ana.nunez+vip@example.co.uk said", "caller [email] said"),
    ("number=%2B14155550123&locationId=l", "number=***0123&locationId=l"),
    ("from +1 (415) 555-0123 to +442079460018", "from ***0123 to ***0018"),
    ("dialled (415) 555-0123", "dialled ***0123"),
    ("at 2026-11-25 10:00:00, epoch 1764064950500, callId=b1223960-1b4d",
     "at 2026-11-25 10:00:00, epoch 1764064950500, callId=b1223960-1b4d"),
])
def test_redaction(text, expected):
    assert redact(text) == expected


SCRIPT = """
import logging
from vapi_bridge import create_app
app = create_app({"WEBHOOK_TOKEN": "hook-secret-1"})
client = app.test_client()
client.post("/vapi/webhook?token=wrong-guess", json={"message": {"type": "hang"}},
            headers={"X-Request-ID": "req-41"})
client.post("/vapi/webhook?token=hook-secret-1", headers={"X-Request-ID": "req-42"},
            json={"message": {"type": "end-of-call-report", "call": {"id": "call-7"},
                              "cost": "lots"}})
logging.getLogger("urllib3.connectionpool").error("GET /x?number=%2B14155550123 token=x")
"""


@pytest.mark.parametrize(("log_format", "env"), [("json", {"LOG_FORMAT": "json"}),
                                                 ("json", {"VERCEL": "1"}),
                                                 ("text", {})])
def test_lines_carry_ids_and_never_secrets(log_format, env):
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env={"PATH": "/usr/bin:/bin", **env})
    assert result.returncode == 0, result.stderr
    output = result.stderr
    for secret in ("hook-secret-1", "wrong-guess", "4155550123"):
        assert secret not in output
    if log_format == "text":
        assert "[WEBHOOK] Unauthorized /vapi/webhook requestId=req-41" in output
        return
    lines = [json.loads(line) for line in output.splitlines()]
    unauthorized = next(line for line in lines if "Unauthorized" in line["message"])
    assert unauthorized["request_id"] == "req-41" and unauthorized["event"] == "WEBHOOK"
    assert unauthorized["level"] == "WARNING" and unauthorized["logger"] == "vapi_bridge.webhooks"
    invalid = next(line for line in lines if "Invalid payload" in line["message"])
    assert (invalid["request_id"], invalid["call_id"]) == ("req-42", "call-7")
    assert any(line["message"] == "GET /x?number=***0123 token=x" for line in lines)


EVERY_SECRET = {
    "WEBHOOK_TOKEN": "hook-secret-9", "VAPI_WEBHOOK_HMAC_SECRET": "hmac-secret-9",
    "GHL_API_KEY": "pit-secret-9", "GHL_LOCATION_ID": "loc-9", "SLACK_BOT_TOKEN": "xoxb-secret-9",
    "SLACK_CHANNEL_ID": "C9", "VAPI_API_KEY": "vapi-key-secret-9", "CRON_SECRET": "cron-secret-9",
    "ADMIN_TOKEN": "admin-secret-9-long-enough",
    # Nothing listens there: every delivery fails and logs why.
    "GHL_API_BASE_URL": "http://127.0.0.1:9", "SLACK_API_BASE_URL": "http://127.0.0.1:9/api/",
    "VAPI_API_BASE_URL": "http://127.0.0.1:9", "HTTP_TIMEOUT_SECONDS": "1",
}
CALL = """
import json, logging
from vapi_bridge import create_app
app = create_app()
client = app.test_client()
report = {"message": {"type": "end-of-call-report", "endedReason": "customer-ended-call",
          "call": {"id": "call-9", "customer": {"number": "+14155550199"}},
          "customer": {"number": "+14155550199", "email": "ana@example.com"},
          "analysis": {"summary": "Call +1 415 555 0199, mail ana@example.com"}}}
client.post("/vapi/webhook?token=hook-secret-9", json=report,
            headers={"X-Request-ID": "req-9", "X-Vapi-Secret": "hook-secret-9",
                     "Authorization": "Bearer hook-secret-9", "x-signature": "sig-secret-9"})
client.post("/vapi/webhook", json=report, headers={"x-signature": "sig-secret-9",
                                                   "X-Request-ID": "req-10"})
client.get("/cron/retry", headers={"Authorization": "Bearer cron-secret-9"})
client.get("/", headers={"Authorization": "Basic YWRtaW46YWRtaW4tc2VjcmV0LTk="})
"""


def test_a_request_carrying_every_secret_leaves_none_in_the_log():
    env = {"PATH": "/usr/bin:/bin", "LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG", **EVERY_SECRET}
    result = subprocess.run([sys.executable, "-c", CALL], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    output = result.stderr
    secrets = [value for name, value in EVERY_SECRET.items() if "secret" in value]
    for secret in [*secrets, "sig-secret-9", "4155550199", "415 555 0199", "ana@example.com",
                   "YWRtaW46YWRtaW4tc2VjcmV0LTk="]:
        assert secret not in output, secret
    lines = [json.loads(line) for line in output.splitlines()]
    about_the_call = [line for line in lines if line.get("request_id") == "req-9"
                      and line.get("event") in ("END_OF_CALL", "GHL", "SLACK", "OUTBOX")]
    assert len(about_the_call) >= 3, output  # received, failed steps, parked...
    for line in about_the_call:  # including the delivery threads' lines
        assert (line["call_id"], line["client"]) == ("call-9", "default"), line


@pytest.mark.parametrize(("text", "expected"), [
    ("caller 4155550124 rang", "caller ***0124 rang"),
    ("caller 415-555-0126.", "caller ***0126."),
    ("caller (415) 555-0126", "caller ***0126"),
    ("caller (415)555-0126", "caller ***0126"),
    ("caller 415.555.0126 or 415 555 0127", "caller ***0126 or ***0127"),
    ("caller 1-415-555-0126, 14155550124", "caller ***0126, ***0124"),
    ("number=4155550124&x=1", "number=***0124&x=1"),
])
def test_national_phone_numbers_are_redacted(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "callId=41555501-2345-4155-9555-415555012345",  # a UUID made only of digits
    "callId=b1223960-1b4d-4585-91b8-a69b0f57ec2f",
    "epoch ms 1764064950500, epoch s 1764064950, slack ts 1764064950.500100",
    "at 2026-11-25T10:00:00.000Z or 2026-11-25 10:00:00,123",
    "duration=150.5s cost=$0.1234 attempts=3 elapsed_ms=4155",
    "contact ve9EPM4155550124hlRW1KT, opportunity 0415555012",
])
def test_ids_timestamps_and_durations_are_not_taken_for_phone_numbers(text):
    assert redact(text) == text


FIELDS = """
import logging
from vapi_bridge import create_app
from vapi_bridge.logs import bind
app = create_app({"LOG_LEVEL": "DEBUG"})
client = app.test_client()
forged = "\\n2026-01-01 00:00:00,000 INFO vapi_bridge: forged\\r\\x1b[2K\\x85\\u2028"
client.post("/vapi/webhook", json={"message": {
    "type": "status-update", "status": "ended" + forged + "s" * 300, "call": {"id": "4155550124"}}})
client.post("/vapi/webhook", json={"message": {
    "type": "status-update", "status": "ended", "endedReason": "r" * 300 + forged}})
log = logging.getLogger("vapi_bridge.probe")
bind(call_id="4155550125", client="Ana (415) 555-0126")
log.info("probe" + forged, extra={"caller": "415-555-0127 ana@example.com" + forged})
try:
    raise ValueError("bad number 4155550128" + forged)
except ValueError:
    log.exception("failed")
"""


def run_fields_script(env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, "-c", FIELDS], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env={"PATH": "/usr/bin:/bin", **env})
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_json_fields_extras_and_tracebacks_are_redacted_like_the_message():
    lines = [json.loads(line) for line in run_fields_script({"LOG_FORMAT": "json"}).splitlines()]
    output = json.dumps(lines)
    for number in ("4155550124", "4155550125", "555-0126", "555-0127", "4155550128",
                   "ana@example.com"):
        assert number not in output, number
    status = next(line for line in lines if line["message"].startswith("[STATUS] callId="))
    assert status["call_id"] == "***0124"
    probe = next(line for line in lines if line["message"].startswith("probe"))
    assert (probe["call_id"], probe["client"]) == ("***0125", "Ana ***0126")
    assert probe["caller"].startswith("***0127 [email]")
    failed = next(line for line in lines if line["message"] == "failed")
    assert "ValueError: bad number ***0128" in failed["exc_info"]


def test_status_and_ended_reason_are_cut_to_100_characters():
    output = run_fields_script({"LOG_FORMAT": "json"})
    lines = [json.loads(line)["message"] for line in output.splitlines()]
    with_call = next(line for line in lines if line.startswith("[STATUS] callId="))
    status = with_call.split("status=", 1)[1].rsplit(" recorded", 1)[0].rsplit(" not newer", 1)[0]
    assert status.startswith("ended\n2026") and len(status) == 100
    without = next(line for line in lines if "without a call id" in line)
    assert len(without.split("endedReason=", 1)[1]) == 100
    assert "s" * 100 not in output and "r" * 100 not in output


def test_text_lines_cannot_be_forged_with_control_characters():
    output = run_fields_script({"LOG_FORMAT": "text"})
    lines = output.splitlines()
    assert len(lines) >= 4
    record_start = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: ")
    for line in lines:  # every physical line is a whole record, the traceback included
        assert record_start.match(line), line
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]", line), line
    probe = next(line for line in lines if ": probe" in line)
    assert probe.endswith(r"probe\n2026-01-01 00:00:00,000 INFO vapi_bridge: forged"
                          r"\r\x1b[2K\x85\u2028")
    failed = next(line for line in lines if line.endswith(r"\u2028") and "Traceback" in line)
    assert r"failed\nTraceback (most recent call last):\n" in failed


@pytest.mark.parametrize(("payload", "lines"), [
    (EOCR_CURRENT, ["[END_OF_CALL] Delivered"]),  # nothing to deliver: still one line
    (STATUS_UPDATE, ["[STATUS] callId="]),
    ({"message": {"type": "conversation-update", "messages": []}}, []),
    ({"message": {"type": "speech-update", "status": "started"}}, []),
])
def test_one_info_line_per_message_acted_on_none_for_chatter(caplog, payload, lines):
    client = create_app({}).test_client()  # its start-up lines come before the capture
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vapi_bridge"):
        assert client.post("/vapi/webhook", json=payload).status_code == 200
    logged = [r.getMessage() for r in caplog.records
              if r.name.startswith("vapi_bridge") and r.levelno >= logging.INFO]
    assert len(logged) == len(lines), logged
    assert all(line.startswith(start) for line, start in zip(logged, lines, strict=True))
