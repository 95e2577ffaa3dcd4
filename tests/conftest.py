from __future__ import annotations

import itertools
import os
import uuid

import pytest
import redis

from tests.contract import exceptions, ledger
from tests.fakes.ghl import FakeGhl
from tests.fakes.ghl_crm import FakeGhlCrm
from tests.fakes.recording import FakeRecordings
from tests.fakes.slack import FakeSlack
from tests.fakes.upstash_rest import UpstashRestFake
from tests.fakes.vapi_api import FakeVapi
from tests.redis_server import HOW_TO_GET_REDIS, RedisServer
from vapi_bridge import create_app
from vapi_bridge.config import settings_from_mapping
from vapi_bridge.storage import StateStore, create_backend

# Read before any test clears the environment.
GIVEN_REDIS_URL = os.environ.get("REDIS_URL")
REST_TOKEN = "test-rest-token"
# An app with an integration needs a webhook secret to start: tests give it this one, and send
# WEBHOOK_AUTH (harmless where no secret is set).
WEBHOOK_TOKEN = "test-webhook-token"
WEBHOOK_AUTH = {"X-Vapi-Secret": WEBHOOK_TOKEN}
ADMIN_TOKEN = "admin-s3cret-long-enough"
SETTING_NAMES = (
    "STATE_STORAGE", "STATE_STORAGE_PREFIX", "STATE_STORAGE_TTL", "STATE_STORAGE_MAX_ENTRIES",
    "STATE_STORAGE_TIMEOUT", "STATE_STORAGE_CONNECT_TIMEOUT", "STATE_STORAGE_FALLBACK",
    "REDIS_URL", "KV_URL",
    "KV_REST_API_URL", "KV_REST_API_TOKEN", "UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN",
    "LOG_LEVEL", "ACCESS_LOG", "WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_MAX_REQUESTS",
    "PORT", "HOST", "CLIENTS_FILE", "CLIENTS_JSON",
    "GHL_API_KEY", "GHL_LOCATION_ID", "SLACK_BOT_TOKEN", "SLACK_CHANNEL_ID", "SLACK_WEBHOOK_URL",
    "VAPI_API_KEY", "WEBHOOK_TOKEN", "VAPI_WEBHOOK_HMAC_SECRET", "VAPI_WEBHOOK_HMAC_HEADER",
    "VAPI_WEBHOOK_HMAC_TIMESTAMP_HEADER", "VAPI_WEBHOOK_HMAC_ALGORITHM",
    "VAPI_WEBHOOK_HMAC_TOLERANCE",
    "MAX_BODY_BYTES", "BODY_READ_TIMEOUT_SECONDS",
    "VAPI_ASSISTANT_ID", "VAPI_TRANSFER_NUMBER", "VAPI_PHONE_NUMBER_ID",
    "VAPI_API_BASE_URL", "GHL_API_BASE_URL", "GHL_APP_BASE_URL", "SLACK_API_BASE_URL",
    "GHL_CREATE_CONTACTS", "GHL_NOTE_TRANSCRIPT_CHARS", "SLACK_MENTION", "GHL_CALENDAR_ID",
    "PIPELINE_DEADLINE_SECONDS", "TOOL_DEADLINE_SECONDS", "HTTP_TIMEOUT_SECONDS",
    "DEFAULT_TIMEZONE", "DEFAULT_COUNTRY", "GHL_INCOMING_WEBHOOK_URL_DEFAULT",
    "GHL_INCOMING_WEBHOOK_URL_BOOKING", "GHL_INCOMING_WEBHOOK_URL_DEPOSIT",
    "RETRY_MAX_ATTEMPTS", "RETRY_BASE_DELAY_SECONDS", "WORKER_INTERVAL_SECONDS", "CRON_SECRET",
    "ADMIN_TOKEN", "LOG_FORMAT", "VERCEL", "TRUSTED_PROXIES", "ALLOW_UNAUTHENTICATED_WEBHOOKS",
    "SLACK_UPLOAD_RECORDING", "RECORDING_MAX_BYTES",
    "PUBLIC_URL", "VAPI_SERVER_CREDENTIAL_ID",
    "METRICS_TOKEN", "PROMETHEUS_MULTIPROC_DIR",
)
_session = uuid.uuid4().hex[:8]
_prefixes = (f"vbtest{_session}{n}" for n in itertools.count())


_late_violations: list[ledger.Violation] = []


def _unexempted(test: str) -> list[ledger.Violation]:
    return [violation for violation in ledger.take_violations()
            if not exceptions.exempt(violation.operation, violation.field, test)]


@pytest.fixture(autouse=True)
def contract_checked(request):
    """Fails the test if a request to a GoHighLevel or Slack fake, or a fake's answer, broke the
    service's published contract (tests/contract). Set up first, so torn down last: requests
    made in other fixtures' teardown count too."""
    _late_violations.extend(_unexempted(""))  # an earlier test's background work: not this one's
    yield
    violations = _unexempted(request.node.nodeid)
    if violations:
        lines = "\n".join(dict.fromkeys(map(str, violations)))
        pytest.fail("Broke the published contract (tests/contract/exceptions.py lists the only"
                    f" exemptions):\n{lines}", pytrace=False)


def pytest_sessionfinish(session):
    """Violations no test could be blamed for (they came after it ended) still fail the run."""
    _late_violations.extend(_unexempted(""))
    if _late_violations:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    """How much the contract checks covered in this run."""
    for violation in dict.fromkeys(map(str, _late_violations)):
        terminalreporter.write_line(f"contract broken after its test ended: {violation}", red=True)
    if ledger.requests or ledger.slack_payloads:
        terminalreporter.write_line(
            f"contract: {sum(ledger.requests.values())} GoHighLevel requests validated over"
            f" {len(ledger.requests)} operations ({sum(ledger.answers.values())} answers against"
            f" response schemas); {sum(ledger.slack_payloads.values())} Slack payloads;"
            f" exceptions applied {dict(ledger.exempted)}")
        for name, count in sorted(ledger.requests.items()):
            terminalreporter.write_line(f"  {count:6d}  {name}")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """Each test sees only the settings it sets itself."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real Redis: REDIS_URL if given, else a private redis-server; never skipped."""
    if GIVEN_REDIS_URL:
        try:
            redis.Redis.from_url(GIVEN_REDIS_URL).ping()
        except redis.RedisError as exc:
            pytest.fail(f"REDIS_URL does not answer ({exc}). {HOW_TO_GET_REDIS}")
        yield GIVEN_REDIS_URL
        _delete_test_keys(GIVEN_REDIS_URL)
        return
    try:
        server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def redis_client(redis_url):
    return redis.Redis.from_url(redis_url, decode_responses=True)


@pytest.fixture(scope="session")
def upstash(redis_url):
    fake = UpstashRestFake(redis_url, REST_TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture
def prefix():
    return next(_prefixes)


BACKEND_NAMES = ("memory", "redis", "kv-rest")


@pytest.fixture(params=BACKEND_NAMES)
def backend_env(request, redis_url, upstash):
    """Environment selecting each backend in turn (narrow it with indirect parametrize)."""
    return {
        "memory": {},
        "redis": {"REDIS_URL": redis_url},
        "kv-rest": {"KV_REST_API_URL": upstash.url, "KV_REST_API_TOKEN": REST_TOKEN},
    }[request.param]


@pytest.fixture
def make_store(backend_env, prefix, upstash):
    """Build a StateStore on the selected backend, as the app would from its environment."""
    upstash.server.clear_log()

    def make(**env) -> StateStore:
        settings = settings_from_mapping({**backend_env, "STATE_STORAGE_PREFIX": prefix, **env})
        return StateStore(create_backend(settings), prefix=settings.storage_prefix,
                          ttl=settings.storage_ttl)

    return make


@pytest.fixture
def store(make_store) -> StateStore:
    return make_store()


def _delete_test_keys(url: str) -> None:
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match=f"vbtest{_session}*", count=1000):
        client.delete(key)


def _running(fake):
    """A local fake server for the length of one test."""
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def ghl():
    yield from _running(FakeGhl())


@pytest.fixture
def slack():
    yield from _running(FakeSlack())


@pytest.fixture
def vapi_api():
    yield from _running(FakeVapi())


@pytest.fixture
def recordings():
    """Where Vapi keeps recordings (a WAV by default)."""
    yield from _running(FakeRecordings())


@pytest.fixture
def integrations_env(ghl, slack, vapi_api):
    """Every outside service configured (default client), reached over sockets."""
    return {
        "GHL_API_BASE_URL": ghl.url, "SLACK_API_BASE_URL": slack.api_url,
        "VAPI_API_BASE_URL": vapi_api.url, "VAPI_API_KEY": vapi_api.api_key,
        "GHL_API_KEY": "pit-default", "GHL_LOCATION_ID": "loc-default",
        "SLACK_BOT_TOKEN": "xoxb-default", "SLACK_CHANNEL_ID": "C-default",
        "WEBHOOK_TOKEN": WEBHOOK_TOKEN,
    }


@pytest.fixture
def make_app(prefix):
    """The app with ADMIN_TOKEN set; ``envs`` (integrations, backend) merged in order."""
    def make(*envs, **env):
        merged = {key: value for each in envs for key, value in each.items()}
        return create_app({**merged, "STATE_STORAGE_PREFIX": prefix, "ADMIN_TOKEN": ADMIN_TOKEN,
                           **env})

    return make


@pytest.fixture(scope="module")
def crm_server():
    """The GoHighLevel CRM fake (tools' endpoints), one per module: ``crm`` resets it per test."""
    fake = FakeGhlCrm().start()
    yield fake
    fake.stop()


@pytest.fixture
def crm(crm_server):
    crm_server.reset()
    crm_server.server.clear_log()
    return crm_server
