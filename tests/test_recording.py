"""The recording step: downloaded from a recording server, uploaded to the Slack fake in the
call's thread the way slack-sdk's files_upload_v2 does it, all over sockets."""

from __future__ import annotations

import copy
import json
import threading
import time

import pytest

from tests.test_pipeline import delivery, post, report
from tests.vapi.payloads import EOCR_LEGACY
from vapi_bridge import create_app, pipeline
from vapi_bridge.context import current_context
from vapi_bridge.report import CallReport
from vapi_bridge.vapi.messages import validate
from vapi_bridge.vapi.schemas import EndOfCallReportSchema


@pytest.fixture
def bridge(integrations_env):
    def make(**env):
        return create_app({**integrations_env, "SLACK_UPLOAD_RECORDING": "true",
                           "VAPI_API_KEY": None, **env})

    return make


def call(recordings, call_id="call-1", url=None):
    """An end-of-call-report whose mono recording is on the recording server."""
    payload = report(call_id=call_id)
    payload["message"]["artifact"]["recording"] = {
        "stereoUrl": recordings.url_for("stereo.wav"),
        "mono": {"combinedUrl": url or recordings.url_for(f"{call_id}-mono.wav")}}
    return payload


def drain(app, **options):
    with app.app_context():
        return pipeline.drain_outbox(current_context(), include_future=True, **options)


def test_uploaded_in_the_thread_of_the_calls_message(bridge, slack, recordings):
    app = bridge()
    assert post(app, call(recordings)).get_json() == {"status": "received"}
    [message], [file] = slack.messages, slack.files
    assert file["data"] == recordings.body and file["filename"] == "call-call-1.wav"
    assert (file["channel"], file["thread_ts"]) == ("C-default", message["ts"])
    assert file["title"] == "default · caller …0123 · 2026-11-25 10:00 UTC"
    assert file["token"] == "xoxb-default"
    [download] = recordings.requests
    assert download.path == "/recordings/call-1-mono.wav"  # mono, not stereo
    assert "Authorization" not in download.headers and "Cookie" not in download.headers
    steps = delivery(app)
    assert steps["slack"] == {"status": "ok", "attempts": 1, "last_error": None,
                              "thread_ts": message["ts"]}
    assert steps["recording"] == {"status": "ok", "attempts": 1, "last_error": None,
                                  "bytes": len(recordings.body), "file_id": file["id"]}
    post(app, call(recordings))  # Vapi sending it again: nothing twice
    assert len(slack.files) == 1 and len(recordings.requests) == 1


def test_mono_is_preferred_wherever_it_is():
    payload = copy.deepcopy(EOCR_LEGACY)
    payload["message"]["artifact"]["recording"] = {"stereoUrl": "https://storage.vapi.ai/s.wav"}
    message = validate(EndOfCallReportSchema, payload["message"])
    assert CallReport.from_message(message).recording_url.endswith("x-mono.wav")


def test_option_off_or_incoming_webhook_means_no_step(bridge, slack, recordings):
    app = bridge(SLACK_UPLOAD_RECORDING="false")
    post(app, call(recordings))
    assert "recording" not in delivery(app) and recordings.requests == []
    hooked = bridge(SLACK_BOT_TOKEN=None, SLACK_CHANNEL_ID=None,
                    SLACK_WEBHOOK_URL=slack.webhook_url)
    post(hooked, call(recordings, "call-2"))
    assert "recording" not in delivery(hooked, "call-2") and slack.files == []


def test_thirty_concurrent_deliveries_upload_once(bridge, slack, recordings, redis_url, prefix):
    app = bridge(REDIS_URL=redis_url, STATE_STORAGE_PREFIX=prefix)
    payload, start = call(recordings), threading.Barrier(30)
    answers = []

    def deliver():
        start.wait()
        answers.append(post(app, payload).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 30
    drain(app)  # whatever waited for another delivery's claim
    assert len(slack.messages) == 1 and len(slack.files) == 1
    assert slack.files[0]["thread_ts"] == slack.messages[0]["ts"]


def test_download_failing_is_parked_then_uploaded_once(bridge, slack, recordings):
    recordings.fail_next(1, 500)
    app = bridge()
    post(app, call(recordings))
    step = delivery(app)["recording"]
    assert step["status"] == "parked" and step["last_error"] == "recording: download HTTP 500"
    assert slack.files == [] and len(slack.messages) == 1
    result = app.test_cli_runner().invoke(args=["vapi-bridge", "outbox"])
    assert "call-1" in result.stdout and " recording " in result.stdout
    assert drain(app).delivered == 1
    assert len(slack.files) == 1 and slack.files[0]["thread_ts"] == slack.messages[0]["ts"]
    assert delivery(app)["recording"]["status"] == "ok"
    assert drain(app).seen == 0 and len(slack.files) == 1


def test_slack_5xx_on_upload_is_parked_then_uploaded(bridge, slack, recordings):
    recordings.fail_next(1, 503)
    app = bridge()
    post(app, call(recordings))
    slack.fail_next(3, 503)  # files.getUploadURLExternal and slack-sdk's two retries
    summary = drain(app)
    assert (summary.parked, slack.files) == (1, [])
    assert "slack: HTTP 503" in delivery(app)["recording"]["last_error"]
    assert drain(app).delivered == 1 and len(slack.files) == 1


def test_missing_files_write_scope_is_a_dead_letter(bridge, slack, recordings):
    slack.scopes = ["chat:write"]
    app = bridge()
    post(app, call(recordings))
    step = delivery(app)["recording"]
    assert step["status"] == "dead" and step["last_error"] == "slack: missing_scope"


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "counted"])
def test_over_the_cap_is_skipped_and_the_link_stays(bridge, slack, recordings, streamed):
    recordings.streamed = streamed
    app = bridge(RECORDING_MAX_BYTES="1000")
    post(app, call(recordings))
    step = delivery(app)["recording"]
    assert step["status"] == "skipped" and "over RECORDING_MAX_BYTES (1000)" in step["last_error"]
    assert slack.files == [] and "|Call recording>" in json.dumps(slack.messages[0]["blocks"])
    assert drain(app).seen == 0  # a skip is final


def test_not_audio_is_skipped(bridge, slack, recordings):
    recordings.content_type = "text/html; charset=utf-8"
    app = bridge()
    post(app, call(recordings))
    assert delivery(app)["recording"] == {"status": "skipped", "attempts": 1,
                                          "last_error": "not audio (Content-Type text/html)"}
    assert slack.files == []


@pytest.mark.parametrize("url, why", [
    ("file:///etc/passwd", "not an http(s) URL"),
    ("ftp://127.0.0.1/x.wav", "not an http(s) URL"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::ffff:169.254.169.254]/x.wav", "link-local"),
    ("http://0.0.0.0/x.wav", "link-local"),
    ("http://user:secret@127.0.0.1/x.wav", "credentials"),
])
def test_hostile_urls_are_never_fetched(bridge, slack, recordings, url, why):
    app = bridge()
    post(app, call(recordings, url=url))
    step = delivery(app)["recording"]
    assert step["status"] == "skipped" and why in step["last_error"]
    assert recordings.requests == [] and slack.files == []


def test_redirect_to_a_refused_address_is_not_followed(bridge, slack, recordings):
    recordings.redirect_to = "http://169.254.169.254/latest/meta-data/"
    app = bridge()
    post(app, call(recordings))
    assert "link-local" in delivery(app)["recording"]["last_error"]
    assert len(recordings.requests) == 1 and slack.files == []


def test_the_answer_never_waits_for_a_slow_download(bridge, slack, recordings):
    recordings.gate = threading.Event()  # the recording server answers when the test says
    app = bridge(PIPELINE_DEADLINE_SECONDS="0.5")
    try:
        assert post(app, call(recordings)).get_json() == {"status": "received"}
        step = delivery(app)["recording"]
        assert step["status"] == "parked"
        assert step["last_error"] == "still running at the pipeline deadline"
        assert len(slack.messages) == 1 and slack.files == []
    finally:
        recordings.gate.set()
    for _ in range(200):  # the late step finishes on its own, after the answer
        if slack.files:
            break
        time.sleep(0.05)
    assert drain(app).delivered == 1 and len(slack.files) == 1  # its claim: no second upload


def test_a_download_timeout_is_parked(bridge, slack, recordings):
    recordings.gate = threading.Event()  # no answer until the test ends
    app = bridge(HTTP_TIMEOUT_SECONDS="0.3")
    try:
        post(app, call(recordings))
        step = delivery(app)["recording"]
    finally:
        recordings.gate.set()
    assert step["status"] == "parked" and step["last_error"] == "recording: ReadTimeout"
    assert slack.files == []


def test_an_unreachable_recording_server_is_parked(bridge, slack, recordings):
    url = recordings.url_for("gone.wav")
    recordings.stop()
    app = bridge()
    post(app, call(recordings, url=url))
    step = delivery(app)["recording"]
    assert step["status"] == "parked" and step["last_error"] == "recording: ConnectionError"


# check
def check(app):
    return app.test_cli_runner().invoke(args=["vapi-bridge", "check"])


@pytest.mark.parametrize("scopes, line", [
    (["chat:write", "files:write"], "OK   slack (default) files:write (recording uploads)"),
    (["chat:write"], "FAIL slack (default) files:write (recording uploads): the token lacks"
                     " files:write -> add the scope files:write to the token in SLACK_BOT_TOKEN"),
    (None, "SKIP slack (default) files:write (recording uploads): not verifiable (Slack sent no"
           " x-oauth-scopes header)"),
])
def test_check_says_whether_the_token_may_upload(bridge, slack, scopes, line):
    slack.scopes = scopes
    result = check(bridge(GHL_API_KEY=None))
    assert any(out.startswith(line) for out in result.stdout.splitlines()), result.stdout
    assert result.exit_code == (1 if line.startswith("FAIL") else 0)


def test_check_says_an_incoming_webhook_cannot_upload(bridge, slack):
    app = bridge(GHL_API_KEY=None, SLACK_BOT_TOKEN=None, SLACK_CHANNEL_ID=None,
                 SLACK_WEBHOOK_URL=slack.webhook_url)
    assert "WARN slack (default) files:write (recording uploads): an incoming webhook cannot" \
           " upload files" in check(app).stdout


def test_status_page_shows_the_step(bridge, slack, recordings):
    recordings.fail_next(1, 500)
    app = bridge(ADMIN_TOKEN="an-admin-token-of-16+")
    post(app, call(recordings))
    page = app.test_client().get("/", auth=("x", "an-admin-token-of-16+")).get_data(as_text=True)
    assert "<th>Recording</th>" in page
    assert 'class="step-recording"><div>' in page and "download HTTP 500" in page


def test_bad_setting_values_stop_start_up(integrations_env):
    from vapi_bridge.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="SLACK_UPLOAD_RECORDING must be true or false"):
        load_settings({"SLACK_UPLOAD_RECORDING": "yes"})
    with pytest.raises(ConfigError, match="RECORDING_MAX_BYTES must be a positive int"):
        load_settings({"RECORDING_MAX_BYTES": "25MB"})
    clients = [{"name": "North", "slack_upload_recording": "true"}]
    with pytest.raises(ConfigError, match="slack_upload_recording"):
        load_settings({"CLIENTS_JSON": json.dumps(clients)})
    clients[0]["slack_upload_recording"] = True
    assert load_settings({"CLIENTS_JSON": json.dumps(clients)}).clients.by_name(
        "North").slack_upload_recording is True

