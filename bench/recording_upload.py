"""What uploading a call's recording to Slack costs the app: time and peak memory.

The Slack fake and the recording server run in a child process (so their copies of the bytes
are not counted); the app delivers end-of-call-reports through its WSGI callable with
SLACK_UPLOAD_RECORDING on, first without a recording, then with one of MIB MiB (default 25,
the RECORDING_MAX_BYTES default). Peak memory is the process's max RSS (getrusage).

    .venv/bin/python -m bench.recording_upload [MIB]
"""

from __future__ import annotations

import copy
import json
import logging
import resource
import statistics
import subprocess
import sys
import time

from tests.vapi.payloads import EOCR_CURRENT
from vapi_bridge import create_app

SERVE = """
import sys, time
from tests.fakes.recording import FakeRecordings
from tests.fakes.slack import FakeSlack
slack, recordings = FakeSlack().start(), FakeRecordings().start()
recordings.body = b"\\0" * (int(sys.argv[1]) * 1024 * 1024 - 1024)
print(slack.api_url, recordings.url_for(), flush=True)
sys.stdin.read()  # until the parent closes it
"""


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(mib: int = 25) -> None:
    fakes = subprocess.Popen([sys.executable, "-c", SERVE, str(mib)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        api_url, recording_url = fakes.stdout.readline().split()
        app = create_app({"SLACK_API_BASE_URL": api_url, "SLACK_BOT_TOKEN": "xoxb-bench",
                          "SLACK_CHANNEL_ID": "C-bench", "WEBHOOK_TOKEN": "bench",
                          "SLACK_UPLOAD_RECORDING": "true", "PIPELINE_DEADLINE_SECONDS": "60"})
        logging.getLogger("vapi_bridge").setLevel(logging.WARNING)  # after create_app's set-up
        client = app.test_client()

        def deliver(call_id: str, url: str | None) -> float:
            payload = copy.deepcopy(EOCR_CURRENT)
            payload["message"]["call"]["id"] = call_id
            payload["message"]["artifact"]["recording"] = {"mono": {"combinedUrl": url}} \
                if url else {}
            started = time.perf_counter()
            client.post("/vapi/webhook", data=json.dumps(payload),
                        content_type="application/json", headers={"X-Vapi-Secret": "bench"})
            return time.perf_counter() - started

        plain = [deliver(f"plain-{n}", None) for n in range(5)]
        before = max_rss_mib()
        uploads = [deliver(f"upload-{n}", recording_url) for n in range(5)]
        after = max_rss_mib()
        steps = [app.extensions["state_storage"].get_metadata(f"upload-{n}")["delivery"]
                 ["recording"]["status"] for n in range(5)]
    finally:
        fakes.stdin.close()
        fakes.wait(timeout=10)
    print(f"recording {mib} MiB, 5 deliveries each (median): without a recording"
          f" {statistics.median(plain) * 1000:.1f} ms, with it"
          f" {statistics.median(uploads) * 1000:.1f} ms; steps {steps}")
    print(f"max RSS {before:.1f} MiB before the uploads, {after:.1f} MiB after"
          f" (+{after - before:.1f} MiB)")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:2]))
