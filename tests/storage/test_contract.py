"""One contract, every backend: memory, Redis, and the REST API in front of Redis."""

from __future__ import annotations

import time

import pytest

from vapi_bridge.storage import StateStore

SUMMARY = "Caller booked a cleaning for Tuesday. Señora Núñez 😀 — 预约"
METADATA = {"ghl": {"contactId": "c_1", "tags": ["nuevo", "café"]}, "n": 3, "ok": True, "x": None}
BAD_IDS = ["", "a:b", "has space", "tab\there", "new\nline", "nul\x00", "bell\x07", "\u2003em",
           "x" * 257, None, 12]


def test_summary_round_trip(store: StateStore):
    assert store.get_call_summary("call-1") is None
    store.store_call_summary("call-1", SUMMARY)
    assert store.get_call_summary("call-1") == SUMMARY
    store.store_call_summary("call-1", "second")
    assert store.get_call_summary("call-1") == "second"


def test_metadata_round_trip_is_unicode_safe(store: StateStore):
    assert store.get_metadata("call-1") is None
    store.store_metadata("call-1", METADATA)
    assert store.get_metadata("call-1") == METADATA
    with pytest.raises(ValueError):
        store.store_metadata("call-1", ["not", "an", "object"])  # type: ignore[arg-type]


def test_keys_are_the_seeds(store: StateStore):
    store.store_call_summary("call-1", SUMMARY)
    store.store_metadata("call-1", METADATA)
    store.mark_note_sent("call-1", "contact-9")
    p = store.prefix
    assert store.backend.get(f"{p}:summary:call-1") == SUMMARY
    assert store.backend.get(f"{p}:metadata:call-1") is not None
    assert store.backend.get(f"{p}:note:call-1:contact-9") == "true"


def test_claim_once_then_release_lets_a_retry_claim(store: StateStore):
    assert store.claim_note("call-1", "contact-1") is True
    assert store.claim_note("call-1", "contact-1") is False
    assert store.claim_note("call-1", "contact-2") is True  # other contact, other note
    assert store.release_note("call-1", "contact-1") is True
    assert store.release_note("call-1", "contact-1") is False  # already given back
    assert store.claim_note("call-1", "contact-1") is True


def test_release_only_undoes_our_own_claim(make_store):
    ours, theirs = make_store(), make_store()  # two processes sharing one store
    if not ours.backend.persistent:
        theirs = StateStore(ours.backend, prefix=ours.prefix, ttl=ours.ttl)
    assert theirs.claim_note("call-1", "contact-1") is True
    assert ours.release_note("call-1", "contact-1") is False
    assert ours.claim_note("call-1", "contact-1") is False  # their claim still stands


def test_sent_only_after_mark(store: StateStore):
    assert store.was_note_sent("call-1", "contact-1") is False
    assert store.claim_note("call-1", "contact-1") is True
    assert store.was_note_sent("call-1", "contact-1") is False  # in flight is not sent
    store.mark_note_sent("call-1", "contact-1")
    assert store.was_note_sent("call-1", "contact-1") is True
    assert store.claim_note("call-1", "contact-1") is False
    assert store.release_note("call-1", "contact-1") is False  # a sent note stays sent
    assert store.was_note_sent("call-1", "contact-1") is True


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_bad_ids_are_refused_before_any_write(store: StateStore, bad):
    calls = [
        lambda: store.store_call_summary(bad, "s"),
        lambda: store.get_call_summary(bad),
        lambda: store.store_metadata(bad, {}),
        lambda: store.get_metadata(bad),
        lambda: store.claim_note(bad, "contact-1"),
        lambda: store.claim_note("call-1", bad),
        lambda: store.release_note("call-1", bad),
        lambda: store.was_note_sent(bad, "contact-1"),
        lambda: store.mark_note_sent("call-1", bad),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="must"):
            call()
    assert store.claim_note("call-1", "contact-1") is True  # nothing was written


def test_longest_valid_id_is_accepted(store: StateStore):
    call_id = "c" * 256
    store.store_call_summary(call_id, "s")
    assert store.get_call_summary(call_id) == "s"


def test_every_key_carries_the_ttl(make_store):
    store = make_store(STATE_STORAGE_TTL="3600")
    store.store_call_summary("call-1", "s")
    store.store_metadata("call-1", {"a": 1})
    store.claim_note("call-1", "contact-1")
    store.mark_note_sent("call-1", "contact-2")
    store.backend.set_many({store.key("x", "1"): "a", store.key("x", "2"): "b"}, ex=store.ttl)
    keys = ["summary:call-1", "metadata:call-1", "note:call-1:contact-1",
            "note:call-1:contact-2", "x:1", "x:2"]
    for key in keys:
        assert 3590 <= store.backend.ttl(f"{store.prefix}:{key}") <= 3600, key


def test_keys_expire(make_store):
    store = make_store(STATE_STORAGE_TTL="1")
    store.store_call_summary("call-1", "s")
    store.store_metadata("call-1", {"a": 1})
    assert store.claim_note("call-1", "contact-1") is True
    store.mark_note_sent("call-1", "contact-2")
    time.sleep(1.2)
    assert store.get_call_summary("call-1") is None
    assert store.get_metadata("call-1") is None
    assert store.was_note_sent("call-1", "contact-2") is False
    assert store.claim_note("call-1", "contact-1") is True
    assert store.backend.ttl(store.key("summary", "call-1")) == -2


def test_set_many_writes_every_key(store: StateStore):
    items = {store.key("x", str(n)): f"v{n}é" for n in range(5)}
    store.backend.set_many(items, ex=60)
    assert {key: store.backend.get(key) for key in items} == items


def test_status_reports_a_real_ping(store: StateStore):
    status = store.status()
    expected = {
        "memory": ("memory", False), "redis": ("Redis", True), "kv-rest": ("Vercel KV", True),
    }[store.backend.name]
    assert (status["type"], status["persistent"]) == expected
    assert status["available"] is True
    assert status["latency_ms"] >= 0
    assert status["backend"] == store.backend.name


def test_record_call_writes_summary_and_metadata_with_the_ttl(store: StateStore):
    store.record_call("call-1", summary=SUMMARY, metadata=METADATA)
    store.record_call("call-2", summary=None, metadata={"n": 1})
    assert store.get_call_summary("call-1") == SUMMARY
    assert store.get_metadata("call-1") == METADATA
    assert store.get_call_summary("call-2") is None
    assert store.get_metadata("call-2") == {"n": 1}
    for key in ("summary:call-1", "metadata:call-1", "metadata:call-2"):
        assert 0 < store.backend.ttl(f"{store.prefix}:{key}") <= store.ttl


def test_status_only_moves_forward(store: StateStore):
    assert store.get_status("call-1") is None
    assert store.advance_status("call-1", "ringing") is True
    assert store.advance_status("call-1", "ringing") is False
    assert store.advance_status("call-1", "ended") is True
    assert store.advance_status("call-1", "in-progress") is False
    assert store.advance_status("call-1", "not-found") is False
    assert store.get_status("call-1") == "ended"
    assert 0 < store.backend.ttl(store.key("status", "call-1")) <= store.ttl


def test_concurrent_status_updates_keep_the_latest(store: StateStore):
    import random
    from concurrent.futures import ThreadPoolExecutor

    from vapi_bridge.storage.state import CALL_STATUSES

    statuses = [random.choice(CALL_STATUSES[:-1]) for _ in range(60)] + ["ended"] * 4
    random.shuffle(statuses)
    with ThreadPoolExecutor(max_workers=32) as pool:
        moved = list(pool.map(lambda s: store.advance_status("call-1", s), statuses))
    assert store.get_status("call-1") == "ended"
    assert moved.count(True) <= len(CALL_STATUSES)
