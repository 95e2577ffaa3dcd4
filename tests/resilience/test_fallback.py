"""FallbackBackend over a real Redis, killed and started again: degrade, re-probe, recover."""

from __future__ import annotations

import logging

import pytest
import redis

from vapi_bridge import create_app
from vapi_bridge.config import settings_from_mapping
from vapi_bridge.outbox import Job, Outbox
from vapi_bridge.storage import CallBelongsToAnotherClient, StateStore, StorageError
from vapi_bridge.storage.fallback import FallbackBackend, with_fallback
from vapi_bridge.storage.memory import MemoryBackend
from vapi_bridge.storage.redis_backend import RedisBackend


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingRedis(RedisBackend):
    """Counts the PINGs: the probes of the store while it is down."""

    pings = 0

    def ping(self) -> None:
        self.pings += 1
        super().ping()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def backend(own_redis, clock):
    return FallbackBackend(CountingRedis(own_redis.url, timeout=0.5, connect_timeout=0.5),
                           clock=clock)


def test_a_healthy_primary_gets_every_call(backend, own_redis):
    backend.set("k", "v", ex=60)
    assert redis.Redis.from_url(own_redis.url, decode_responses=True).get("k") == "v"
    assert backend.get("k") == "v" and len(backend.fallback) == 0
    assert (backend.name, backend.label, backend.persistent, backend.degraded) == (
        "redis", "Redis", True, False)
    assert backend.client is backend.primary.client  # the rest is the primary's


def test_killed_store_degrades_once_and_claims_still_work(backend, own_redis, caplog):
    store = StateStore(backend, prefix="t")
    own_redis.kill()
    assert store.claim_note("call-1", "contact-1") is True
    assert store.claim_note("call-1", "contact-1") is False  # in-process, but still once
    store.store_call_summary("call-1", "kept here")
    assert store.get_call_summary("call-1") == "kept here"
    assert backend.degraded is True
    lines = [r for r in caplog.records if "degraded" in r.getMessage()]
    assert [(r.levelname, r.getMessage()) for r in lines] == [(
        "WARNING", "[STATE_STORAGE] Redis not answering (ConnectionError): degraded, serving"
                   " from in-process memory until it answers again")]
    assert str(own_redis.socket) not in caplog.text


def test_the_store_is_probed_after_a_doubling_pause_then_recovers(backend, own_redis, clock,
                                                                  caplog):
    own_redis.kill()
    backend.set("k", "during", ex=60)  # fails, PINGs to confirm: degraded
    primary = backend.primary
    pings = primary.pings
    for pause in (1, 2, 4, 8, 16, 30, 30):
        for _ in range(20):
            backend.get("k")  # between probes the dead store is not touched
        assert primary.pings == pings
        clock.now += pause
        assert backend.get("k") == "during"
        assert primary.pings == pings + 1, pause  # one probe, failed: the pause doubles
        pings = primary.pings
    own_redis.start()
    clock.now += 30
    assert backend.get("k") == "during"  # the primary again, given what the outage wrote
    assert backend.degraded is False
    assert "[STATE_STORAGE] Redis answers again: recovered" in caplog.text
    backend.set("k", "after", ex=60)
    assert redis.Redis.from_url(own_redis.url, decode_responses=True).get("k") == "after"


def test_what_the_outage_wrote_is_handed_back_to_the_store(backend, own_redis, clock):
    store = StateStore(backend, prefix="t")
    real = redis.Redis.from_url(own_redis.url, decode_responses=True)
    own_redis.kill()
    box = Outbox(store)
    box.park(Job(call_id="call-1", step="note", client="default", report={"call_id": "call-1"}),
             "ghl: HTTP 503", retryable=True)
    store.record_call("call-1", summary="during", metadata={"outcome": "completed"})
    store.store_call_summary("call-0", "written while down")
    store.mark_note_sent("call-2", "contact-2")
    own_redis.start()  # empty: this Redis keeps nothing on disk
    real.set("t:summary:call-0", "written since", ex=600)
    clock.now += 1
    assert store.get_call_summary("call-1") == "during"  # the probe: recovered, handed back
    assert [job.call_id for job in box.jobs()] == ["call-1"]  # the drainers will see it
    assert real.ttl("t:outbox:job:call-1:note") > 86400
    assert [call["call_id"] for call in store.recent_calls()] == ["call-1"]
    assert real.get("t:summary:call-0") == "written since"  # never over what the store holds
    assert store.was_note_sent("call-2", "contact-2") is True
    assert len(backend.fallback) == 0


def test_sign_in_counts_and_sessions_survive_an_outage(backend, own_redis, clock):
    store = StateStore(backend, prefix="t")
    store.count_attempt("signin", "203.0.113.7", 300)
    own_redis.kill()
    assert store.count_attempt("signin", "203.0.113.7", 300)[0] == 1  # this process's count
    assert store.count_attempt("signin", "203.0.113.7", 300)[0] == 2
    session_id = store.open_session("session", 600)
    assert store.has_session("session", session_id)
    own_redis.start()  # empty: this Redis keeps nothing on disk
    clock.now += 1
    assert store.count_attempt("signin", "203.0.113.7", 300)[0] == 3  # handed back, counted on
    assert store.has_session("session", session_id)
    real = redis.Redis.from_url(own_redis.url, decode_responses=True)
    [key] = real.keys("t:session:*")
    assert session_id not in key and 0 < real.ttl(key) <= 600  # with its TTL, hashed


def test_call_owners_hold_while_degraded_and_are_handed_back(backend, own_redis, clock):
    store = StateStore(backend, prefix="t")
    own_redis.kill()
    store.record_call("call-1", summary="s", metadata={}, client="North")
    with pytest.raises(CallBelongsToAnotherClient):
        store.record_call("call-1", summary="theirs", metadata={}, client="South")
    assert store.get_call_summary("call-1") == "s"
    own_redis.start()
    clock.now += 1
    assert store.call_owner("call-1") == "North"  # the probe: recovered, handed back
    assert redis.Redis.from_url(own_redis.url, decode_responses=True).get(
        "t:owner:call-1") == "North"
    with pytest.raises(CallBelongsToAnotherClient):
        store.own_call("call-1", "South")


def test_a_refused_command_is_an_error_not_an_outage(backend):
    backend.zadd("zset", "m", 1.0)
    with pytest.raises(StorageError, match="WRONGTYPE"):
        backend.get("zset")
    assert backend.degraded is False


def test_ping_is_the_truth_for_health(backend, own_redis, clock):
    own_redis.kill()
    with pytest.raises(StorageError):
        backend.ping()
    assert backend.degraded is True
    own_redis.start()
    backend.ping()  # no pause for /health: it reports the store as it is now
    assert backend.degraded is False


@pytest.mark.parametrize(("env", "wrapped"), [
    ({}, False),
    ({"REDIS_URL": "redis://127.0.0.1:1/0"}, True),
    ({"REDIS_URL": "redis://127.0.0.1:1/0", "STATE_STORAGE_FALLBACK": "none"}, False),
    ({"KV_REST_API_URL": "http://127.0.0.1:1", "KV_REST_API_TOKEN": "t"}, True),
    ({"KV_REST_API_URL": "http://127.0.0.1:1", "KV_REST_API_TOKEN": "t",
      "STATE_STORAGE_FALLBACK": "NONE"}, False),
])
def test_only_persistent_stores_get_the_fallback(env, wrapped):
    backend = create_app(env).extensions["state_storage"].backend
    assert isinstance(backend, FallbackBackend) is wrapped
    if wrapped:
        assert isinstance(backend.fallback, MemoryBackend)


def test_the_setting_is_checked():
    from vapi_bridge.config import ConfigError

    with pytest.raises(ConfigError, match="STATE_STORAGE_FALLBACK must be memory or none"):
        settings_from_mapping({"STATE_STORAGE_FALLBACK": "disk"})
    settings = settings_from_mapping({"STATE_STORAGE_MAX_ENTRIES": "7",
                                      "REDIS_URL": "redis://127.0.0.1:1/0"})
    backend = with_fallback(RedisBackend("redis://127.0.0.1:1/0"), settings)
    assert backend.fallback._max_entries == 7  # bounded like the dict store


@pytest.fixture(autouse=True)
def _info_logs(caplog):
    caplog.set_level(logging.INFO, logger="vapi_bridge")
