"""One contract, every backend: memory, Redis, and the REST API in front of Redis."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from vapi_bridge.storage import CallBelongsToAnotherClient, StateStore
from vapi_bridge.storage.state import TOOL_CALLS_KEPT

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


# Primitives the outbox, the recent calls and the call status are built on.
def test_get_many_keeps_the_order_and_gives_none_for_missing(store: StateStore):
    backend = store.backend
    assert backend.get_many([]) == []
    backend.set(store.key("x", "a"), "1é", ex=60)
    backend.set(store.key("x", "c"), "3", ex=60)
    keys = [store.key("x", name) for name in ("c", "b", "a", "c")]
    assert backend.get_many(keys) == ["3", None, "1é", "3"]


def test_delete_says_whether_there_was_a_key(store: StateStore):
    key = store.key("x", "1")
    store.backend.set(key, "v", ex=60)
    assert store.backend.delete(key) is True
    assert store.backend.delete(key) is False
    assert store.backend.get(key) is None


def test_set_many_appends_to_a_capped_log(store: StateStore):
    log = store.key("log")
    assert store.backend.latest(log, 5) == []
    store.backend.set_many({store.key("x", "1"): "a", store.key("x", "2"): "b"}, ex=60,
                           append=(log, "first", 3))
    assert store.backend.get_many([store.key("x", "1"), store.key("x", "2")]) == ["a", "b"]
    assert 50 <= store.backend.ttl(store.key("x", "2")) <= 60
    for value in ("second", "third", "fourth", "fourth"):
        store.backend.set_many({}, ex=60, append=(log, value, 3))
    assert store.backend.latest(log, 5) == ["fourth", "fourth", "third"]  # capped at 3
    assert store.backend.latest(log, 2) == ["fourth", "fourth"]


def test_zadd_adds_rescores_and_reports_changes(store: StateStore):
    key, backend = store.key("z"), store.backend
    assert backend.zscore(key, "a") is None
    assert backend.zadd(key, "a", 1.5) is True
    assert backend.zadd(key, "a", 1.5) is False  # nothing changed
    assert backend.zadd(key, "a", 3.0) is True
    assert backend.zscore(key, "a") == 3.0
    score = time.time()  # the outbox's scores: epoch seconds, kept exactly
    assert backend.zadd(key, "b", score) is True
    assert backend.zscore(key, "b") == score
    assert backend.zcard(key) == 2


def test_zadd_gt_only_raises_a_score(store: StateStore):
    key, backend = store.key("z"), store.backend
    assert backend.zadd(key, "m", 0, gt=True) is True  # a new member, even at 0
    assert backend.zadd(key, "m", 2, gt=True) is True
    assert backend.zadd(key, "m", 1, gt=True) is False
    assert backend.zadd(key, "m", 2, gt=True) is False
    assert backend.zscore(key, "m") == 2.0
    assert backend.zadd(key, "m", 1) is True  # without gt, any score goes
    assert backend.zscore(key, "m") == 1.0


def test_zadd_ex_sets_the_ttl_and_a_plain_zadd_keeps_it(store: StateStore):
    key, backend = store.key("z"), store.backend
    backend.zadd(key, "a", 1)
    assert backend.ttl(key) == -1  # a sorted set written without ex has no expiry
    assert backend.ttl(store.key("missing")) == -2
    backend.zadd(key, "b", 2, ex=100)
    assert 90 <= backend.ttl(key) <= 100
    backend.zadd(key, "c", 3)
    assert 90 <= backend.ttl(key) <= 100


def test_zrange_by_score_orders_bounds_and_limits(store: StateStore):
    key, backend = store.key("z"), store.backend
    assert backend.zrange_by_score(key) == []
    for member, score in [("c", 30.0), ("a", 10.0), ("d", 40.0), ("b", 20.0), ("b2", 20.0)]:
        backend.zadd(key, member, score)
    everything = [("a", 10.0), ("b", 20.0), ("b2", 20.0), ("c", 30.0), ("d", 40.0)]
    assert backend.zrange_by_score(key) == everything
    assert backend.zrange_by_score(key, max_score=30.0) == everything[:4]  # inclusive
    assert backend.zrange_by_score(key, max_score=29.9) == everything[:3]
    assert backend.zrange_by_score(key, max_score=5) == []
    assert backend.zrange_by_score(key, limit=2) == everything[:2]
    assert backend.zrange_by_score(key, desc=True) == everything[::-1]
    assert backend.zrange_by_score(key, desc=True, limit=2) == [("d", 40.0), ("c", 30.0)]
    assert backend.zrange_by_score(key, max_score=20.0, desc=True) == [("b2", 20.0), ("b", 20.0),
                                                                        ("a", 10.0)]


def test_zrem_and_zcard(store: StateStore):
    key, backend = store.key("z"), store.backend
    assert backend.zcard(key) == 0
    assert backend.zrem(key, "a") is False
    backend.zadd(key, "a", 1)
    backend.zadd(key, "b", 2)
    assert backend.zrem(key, "a") is True
    assert backend.zrem(key, "a") is False
    assert backend.zcard(key) == 1
    assert backend.zrange_by_score(key) == [("b", 2.0)]


def test_zcard_many_in_order(store: StateStore):
    backend = store.backend
    backend.zadd(store.key("z1"), "a", 1)
    backend.zadd(store.key("z1"), "b", 2)
    backend.zadd(store.key("z2"), "a", 1)
    assert backend.zcard_many([store.key("z2"), store.key("none"), store.key("z1")]) == [1, 0, 2]


def test_a_sorted_set_expires(store: StateStore):
    key = store.key("z")
    store.backend.zadd(key, "a", 1, ex=1)
    time.sleep(1.2)
    assert store.backend.zcard(key) == 0
    assert store.backend.zscore(key, "a") is None
    assert store.backend.ttl(key) == -2


# Recent calls and the call status
def test_recent_calls_newest_first_with_their_ids(store: StateStore):
    assert store.recent_calls() == []
    for n in range(1, 4):
        store.record_call(f"call-{n}", summary=None, metadata={"n": n, "outcome": "completed"})
    assert store.recent_calls() == [{"call_id": f"call-{n}", "n": n, "outcome": "completed"}
                                    for n in (3, 2, 1)]
    assert [call["call_id"] for call in store.recent_calls(limit=2)] == ["call-3", "call-2"]


def test_recent_calls_leave_out_expired_metadata(store: StateStore):
    for n in range(1, 4):
        store.record_call(f"call-{n}", summary="s", metadata={"n": n})
    store.backend.delete(store.key("metadata", "call-2"))  # as if its TTL had run out
    assert [call["call_id"] for call in store.recent_calls()] == ["call-3", "call-1"]


def test_recent_calls_stay_bounded_and_show_a_repeat_once(store: StateStore):
    from vapi_bridge.storage.state import RECENT_CALLS

    calls = 3 * RECENT_CALLS
    for n in range(calls):
        store.record_call(f"call-{n}", summary=None, metadata={"n": n})
    store.record_call("call-0", summary=None, metadata={"n": 0})  # Vapi sent it again
    assert len(store.backend.latest(store.key("recent-calls"), 10 * calls)) == 2 * RECENT_CALLS
    recent = store.recent_calls()
    assert [call["n"] for call in recent] == [0, *range(calls - 1, calls - RECENT_CALLS, -1)]


def test_status_starts_at_any_rank_and_refuses_unknown_ones(store: StateStore):
    assert store.advance_status("call-1", "bogus") is False
    assert store.get_status("call-1") is None
    assert store.advance_status("call-1", "scheduled") is True  # rank 0 still counts
    assert store.get_status("call-1") == "scheduled"
    assert store.advance_status("call-1", "queued") is True
    assert store.get_status("call-1") == "queued"
    assert store.get_status("call-2") is None
    for bad in ("a:b", "", None):
        with pytest.raises(ValueError, match="must"):
            store.advance_status(bad, "ringing")
        with pytest.raises(ValueError, match="must"):
            store.get_status(bad)


# Counters with a fixed window (the sign-in limit)
def test_incr_counts_from_one_and_keeps_the_first_ttl(store: StateStore):
    key, backend = store.key("n"), store.backend
    assert backend.incr(key, ex=100) == (1, 100)
    backend_ttl = backend.ttl(key)
    assert 99 <= backend_ttl <= 100
    count, left = backend.incr(key, ex=5000)  # a later ex does not move the window
    assert count == 2 and 99 <= left <= 100 and 99 <= backend.ttl(key) <= 100
    assert backend.get(key) == "2"


def test_incr_gives_a_counter_without_ttl_one(store: StateStore):
    key, backend = store.key("n"), store.backend
    backend.set(key, "7", ex=1)
    time.sleep(1.2)  # expired: counts from 1 again, with a new window
    assert backend.incr(key, ex=60) == (1, 60)


def test_incr_expires(store: StateStore):
    key, backend = store.key("n"), store.backend
    backend.incr(key, ex=1)
    backend.incr(key, ex=1)
    time.sleep(1.2)
    assert backend.get(key) is None
    assert backend.incr(key, ex=1)[0] == 1


def test_incr_on_a_value_that_is_no_integer_raises(store: StateStore):
    from vapi_bridge.storage import StorageError

    key = store.key("n")
    store.backend.set(key, "abc", ex=60)
    with pytest.raises(StorageError):
        store.backend.incr(key, ex=60)
    assert store.backend.get(key) == "abc"


def test_concurrent_incr_loses_no_count(store: StateStore):
    from concurrent.futures import ThreadPoolExecutor

    key = store.key("n")
    with ThreadPoolExecutor(8) as pool:
        counts = sorted(count for count, _ in pool.map(
            lambda _: store.backend.incr(key, ex=60), range(40)))
    assert counts == list(range(1, 41))


def test_attempts_are_counted_per_who_under_a_hashed_key(store: StateStore):
    who = "2001:db8::1"  # an IPv6 address: ':' may not appear in a key as is
    assert store.count_attempt("signin", who, 60) == (1, 60)
    count, left = store.count_attempt("signin", who, 60)
    assert count == 2 and 59 <= left <= 60
    assert store.count_attempt("signin", "203.0.113.9", 60)[0] == 1  # its own counter
    store.clear_attempts("signin", who)
    assert store.count_attempt("signin", who, 60)[0] == 1
    assert store.count_attempt("signin", "203.0.113.9", 60)[0] == 2  # not cleared


def test_sessions_open_and_close(store: StateStore):
    first, second = store.open_session("session", 60), store.open_session("session", 60)
    assert first != second and len(first) >= 32
    assert store.has_session("session", first) and store.has_session("session", second)
    assert store.has_session("session", "never-opened") is False
    assert store.close_session("session", first) is True
    assert store.has_session("session", first) is False
    assert store.has_session("session", second) is True
    assert store.close_session("session", first) is False


# Call ownership: one client never writes over another's call
def test_set_or_get_writes_once_and_returns_what_is_held(store: StateStore):
    key = store.key("x", "1")
    assert store.backend.set_or_get(key, "Señora Núñez", ex=60) is None  # written
    assert store.backend.get(key) == "Señora Núñez"
    assert 0 < store.backend.ttl(key) <= 60
    assert store.backend.set_or_get(key, "other", ex=600) == "Señora Núñez"  # held: unchanged
    assert store.backend.get(key) == "Señora Núñez"
    assert store.backend.ttl(key) <= 60


def test_concurrent_set_or_get_has_one_writer(store: StateStore):
    key = store.key("x", "race")
    with ThreadPoolExecutor(max_workers=8) as pool:
        held = list(pool.map(lambda n: store.backend.set_or_get(key, f"v{n}", ex=60), range(16)))
    [written] = [n for n, value in enumerate(held) if value is None]
    assert set(held) - {None} == {f"v{written}"}
    assert store.backend.get(key) == f"v{written}"


def test_a_call_belongs_to_the_client_that_recorded_it_first(store: StateStore):
    store.record_call("call-1", summary=SUMMARY, metadata=METADATA, client="North Dental")
    assert store.call_owner("call-1") == "North Dental"
    assert 0 < store.backend.ttl(store.key("owner", "call-1")) <= store.ttl
    with pytest.raises(CallBelongsToAnotherClient) as refused:
        store.record_call("call-1", summary="theirs", metadata={"n": 2}, client="South")
    assert (refused.value.call_id, refused.value.client, refused.value.owner) == (
        "call-1", "South", "North Dental")
    assert store.get_call_summary("call-1") == SUMMARY  # nothing of theirs was written
    assert store.get_metadata("call-1") == METADATA
    assert store.backend.latest(store.key("recent-calls"), 10) == ["call-1"]
    assert store.hourly(["calls"], hours=1)[0][1] == {"calls": 1}  # not counted either
    with pytest.raises(CallBelongsToAnotherClient):
        store.own_call("call-1", "South")
    # The owner again (a Vapi retry): accepted, as before.
    store.record_call("call-1", summary="again", metadata={"n": 3}, client="North Dental")
    store.own_call("call-1", "North Dental")
    assert store.get_call_summary("call-1") == "again"
    assert store.call_owner("call-1") == "North Dental"
    store.own_call("call-2", "South")  # a tool call can be first
    with pytest.raises(CallBelongsToAnotherClient):
        store.record_call("call-2", summary="s", metadata={}, client="North Dental")
    assert store.get_metadata("call-2") is None


def test_a_callers_contact_is_kept_per_call_and_client_with_the_ttl(make_store):
    store = make_store(STATE_STORAGE_TTL="3600")
    store.keep_caller_contact("call-1", "client-a", "contact-a")
    store.keep_caller_contact("call-1", "client-b", "contact-b")
    assert store.caller_contact("call-1", "client-a") == "contact-a"
    assert store.caller_contact("call-1", "client-b") == "contact-b"
    assert store.caller_contact("call-2", "client-a") is None
    assert 3590 <= store.backend.ttl(f"{store.prefix}:caller-contact:call-1:client-a") <= 3600
    store.forget_caller_contact("call-1", "client-a")
    assert store.caller_contact("call-1", "client-a") is None
    assert store.caller_contact("call-1", "client-b") == "contact-b"
    for bad in BAD_IDS:
        with pytest.raises(ValueError):
            store.keep_caller_contact(bad, "client-a", "contact-a")  # type: ignore[arg-type]


def test_an_opportunity_is_kept_per_call_client_contact_and_pipeline_with_the_ttl(make_store):
    store = make_store(STATE_STORAGE_TTL="3600")
    ids = ("call-1", "client-a", "contact-a", "pipe-1")
    store.keep_opportunity(ids, "opp-1", "stage-2")
    assert store.kept_opportunity(ids) == ("opp-1", "stage-2")
    for other in [("call-2", *ids[1:]), (ids[0], "client-b", *ids[2:]),
                  (*ids[:2], "contact-b", ids[3]), (*ids[:3], "pipe-2")]:
        assert store.kept_opportunity(other) is None
    key = f"{store.prefix}:opportunity:call-1:client-a:contact-a:pipe-1"
    assert 3590 <= store.backend.ttl(key) <= 3600
    store.forget_opportunity(ids)
    assert store.kept_opportunity(ids) is None
    for position in range(4):
        for bad in BAD_IDS:
            wrong = tuple(bad if i == position else v for i, v in enumerate(ids))
            with pytest.raises(ValueError):
                store.keep_opportunity(wrong, "opp-1", "stage-2")  # type: ignore[arg-type]


def test_tool_calls_of_a_call_are_logged_bounded_with_the_ttl(make_store):
    store = make_store(STATE_STORAGE_TTL="3600")
    assert store.tool_calls("call-1") == []
    store.record_tool_call("call-1", "check_availability", "ok", at=1000.0)
    store.record_tool_call("call-1", "book_appointment", "error", at=1001.0)
    store.record_tool_call("call-2", "other", "ok", at=1002.0)
    assert store.tool_calls("call-1") == [
        {"name": "check_availability", "outcome": "ok", "at": 1000.0},
        {"name": "book_appointment", "outcome": "error", "at": 1001.0}]  # oldest first
    assert 3590 <= store.backend.ttl(store.key("tool-calls", "call-1")) <= 3600
    for n in range(TOOL_CALLS_KEPT + 5):
        store.record_tool_call("call-1", f"tool-{n}", "ok", at=2000.0 + n)
    logged = store.tool_calls("call-1")
    assert len(logged) == TOOL_CALLS_KEPT and logged[-1]["name"] == f"tool-{TOOL_CALLS_KEPT + 4}"
    store.record_tool_call("call-3", "x" * 500, "ok")
    assert store.tool_calls("call-3")[0]["name"] == "x" * 64  # a name is capped
    with pytest.raises(ValueError):
        store.record_tool_call("a:b", "name", "ok")


def test_the_tool_call_log_expires(make_store):
    store = make_store(STATE_STORAGE_TTL="1")
    store.record_tool_call("call-1", "check_availability", "ok")
    time.sleep(1.2)
    assert store.tool_calls("call-1") == []


def test_hourly_counters_count_calls_and_steps_per_hour(store: StateStore):
    now = 1_800_000_000.0  # counted by the current hour; the reads ask for this clock
    store.record_call("call-1", summary=None, metadata={}, count=["step-ok", "step-ok"])
    store.store_metadata("call-1", {"a": 1}, count=["step-parked"])
    assert store.get_metadata("call-1") == {"a": 1}
    hours = store.hourly(["calls", "step-ok", "step-parked"], hours=24)
    assert len(hours) == 24 and hours[-1][1] == {"calls": 1, "step-ok": 2, "step-parked": 1}
    assert all(counts == {"calls": 0, "step-ok": 0, "step-parked": 0}
               for _, counts in hours[:-1])
    assert hours[-1][0] == time.time() // 3600 * 3600 and hours[0][0] == hours[-1][0] - 23 * 3600
    assert [start for start, _ in store.hourly(["calls"], hours=2, now=now)] == [
        now // 3600 * 3600 - 3600, now // 3600 * 3600]
    key = store.key("hourly", str(int(time.time() // 3600)), "step-ok")
    assert 0 < store.backend.ttl(key) <= store.ttl


def test_set_many_adds_to_counters_with_the_ttl(store: StateStore):
    key = store.key("counter")
    store.backend.set_many({}, ex=60, incr={key: 2})
    store.backend.set_many({store.key("x"): "y"}, ex=60, incr={key: 3})
    assert store.backend.get(key) == "5" and store.backend.get(store.key("x")) == "y"
    assert 50 <= store.backend.ttl(key) <= 60


def test_set_many_with_an_owner_writes_only_for_that_owner(store: StateStore):
    owner, log, counter = store.key("owner", "c1"), store.key("log"), store.key("counter")
    items = {store.key("x", "1"): "a", store.key("x", "2"): "Núñez"}

    def write(value: str, client: str) -> str | None:
        return store.backend.set_many({key: value for key in items}, ex=60,
                                      append=(log, value, 2), incr={counter: 1},
                                      owner=(owner, client))

    assert write("first", "North Dental") is None  # claimed, everything written
    assert store.backend.get(owner) == "North Dental"
    assert 50 <= store.backend.ttl(owner) <= 60
    assert write("second", "North Dental") is None  # its owner again: written again
    assert write("third", "South") == "North Dental"  # another's: nothing written
    assert [store.backend.get(key) for key in items] == ["second", "second"]
    assert store.backend.latest(log, 10) == ["second", "first"]
    assert store.backend.get(counter) == "2" and store.backend.get(owner) == "North Dental"
    assert write("fourth", "North Dental") is None
    assert store.backend.latest(log, 10) == ["fourth", "second"]  # capped exactly (MAXLEN)
    for key in (*items, log, counter):
        assert 50 <= store.backend.ttl(key) <= 60
    # Only the owner's key: the same as set_or_get.
    assert store.backend.set_many({}, ex=60, owner=(store.key("owner", "c2"), "South")) is None
    assert store.backend.set_or_get(store.key("owner", "c2"), "North", ex=60) == "South"


def test_concurrent_owned_writes_have_one_owner(store: StateStore):
    owner, key = store.key("owner", "c1"), store.key("x")
    with ThreadPoolExecutor(max_workers=8) as pool:
        refused = list(pool.map(lambda n: store.backend.set_many(
            {key: f"v{n}"}, ex=60, owner=(owner, f"client-{n}")), range(16)))
    [winner] = [n for n, other in enumerate(refused) if other is None]
    assert set(refused) - {None} == {f"client-{winner}"}
    assert store.backend.get(key) == f"v{winner}"
