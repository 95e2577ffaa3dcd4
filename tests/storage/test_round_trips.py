"""What each operation costs the store: counted by Redis itself and by the REST server."""

from __future__ import annotations

import copy
import time

import pytest

from tests.conftest import REST_TOKEN
from tests.vapi.payloads import EOCR_CURRENT
from vapi_bridge import create_app
from vapi_bridge.outbox import Outbox
from vapi_bridge.storage import CallBelongsToAnotherClient, StateStore
from vapi_bridge.storage.base import OWNED_SET_MANY_LUA


def _stats(redis_client) -> tuple[dict[str, int], int]:
    """Redis's own counts: calls per command, and read events (one per round trip)."""
    stats = redis_client.info("all")
    calls = {name.removeprefix("cmdstat_"): value["calls"]
             for name, value in stats.items() if name.startswith("cmdstat_")}
    return calls, stats["total_reads_processed"]


def _redis_cost(redis_client, operation) -> tuple[dict[str, int], int]:
    """(commands by name, round trips) of ``operation``, as Redis counted them."""
    before, reads_before = _stats(redis_client)
    operation()
    after, reads_after = _stats(redis_client)
    delta = {name: after[name] - before.get(name, 0) for name in after}
    delta["info"] -= 1  # our own INFO, and its read
    return {name: n for name, n in delta.items() if n}, reads_after - reads_before - 1


def _redis_commands(redis_client, operation) -> dict[str, int]:
    return _redis_cost(redis_client, operation)[0]


@pytest.mark.parametrize("backend_env", ["redis"], indirect=True)
def test_redis_one_command_per_operation(store: StateStore, redis_client):
    store.backend.ping()  # connect first: the handshake is not the operation's cost
    assert _redis_commands(redis_client, lambda: store.claim_note("c1", "k1")) == {"set": 1}
    assert _redis_commands(redis_client, lambda: store.store_call_summary("c1", "s")) == {"set": 1}
    assert _redis_commands(redis_client, lambda: store.get_call_summary("c1")) == {"get": 1}


@pytest.mark.parametrize("backend_env", ["kv-rest"], indirect=True)
def test_rest_one_round_trip_per_operation(store: StateStore, upstash):
    store.claim_note("c1", "k1")
    store.store_call_summary("c1", "s")
    store.backend.set_many({store.key("a", "1"): "x", store.key("a", "2"): "y"}, ex=60)
    store.release_note("c1", "k1")
    bodies = upstash.commands()
    assert len(bodies) == 4
    assert bodies[0][:2] == ["SET", store.key("note", "c1", "k1")] and "NX" in bodies[0]
    assert bodies[1][0] == "SET" and bodies[1][-2:] == ["EX", 86400]
    assert [command[0] for command in bodies[2]] == ["SET", "SET"]  # one /pipeline request
    assert bodies[3][0] == "EVAL"


@pytest.mark.parametrize("backend_env", ["redis"], indirect=True)
def test_redis_call_report_and_status_costs(store: StateStore, redis_client):
    store.backend.ping()
    record = lambda: store.record_call("c1", summary="s", metadata={"a": 1})  # noqa: E731
    # One pipeline: metadata, summary, the call's place among the recent calls (kept as
    # long as the TTL), and this hour's call counter (the status page's picture).
    assert _redis_cost(redis_client, record) == ({"set": 2, "xadd": 1, "incrby": 1,
                                                  "expire": 2}, 1)
    advance = lambda: store.advance_status("c1", "ringing")  # noqa: E731
    assert _redis_commands(redis_client, advance) == {"zadd": 1, "expire": 1}


@pytest.mark.parametrize("backend_env", ["kv-rest"], indirect=True)
def test_rest_call_report_and_status_are_one_round_trip_each(store: StateStore, upstash):
    store.record_call("c1", summary="s", metadata={"a": 1})
    store.advance_status("c1", "ended")
    store.advance_status("c1", "ringing")
    bodies = upstash.commands()
    assert len(bodies) == 3
    hour = store.key("hourly", str(int(time.time() // 3600)), "calls")
    assert [command[:2] for command in bodies[0]] == [
        ["SET", store.key("metadata", "c1")], ["SET", store.key("summary", "c1")],
        ["XADD", store.key("recent-calls")], ["EXPIRE", store.key("recent-calls")],
        ["INCRBY", hour], ["EXPIRE", hour]]
    assert [command[0] for command in bodies[1]] == ["ZADD", "EXPIRE"]  # one /pipeline each
    assert [command[0] for command in bodies[2]] == ["ZADD", "EXPIRE"]
    assert store.get_status("c1") == "ended"


@pytest.mark.parametrize("backend_env", ["redis"], indirect=True)
def test_redis_outbox_sizes_are_one_round_trip(store: StateStore, redis_client):
    store.backend.ping()
    assert _redis_cost(redis_client, Outbox(store).sizes) == ({"zcard": 2}, 1)  # a /metrics scrape


@pytest.mark.parametrize("backend_env", ["kv-rest"], indirect=True)
def test_rest_outbox_sizes_are_one_round_trip(store: StateStore, upstash):
    assert Outbox(store).sizes() == {"parked": 0, "dead": 0}
    [body] = upstash.commands()
    assert body == [["ZCARD", store.key("outbox", "due")], ["ZCARD", store.key("outbox", "dead")]]


@pytest.mark.parametrize("backend_env", ["redis"], indirect=True)
def test_redis_counting_an_attempt_is_one_script(store: StateStore, redis_client):
    store.count_attempt("signin", "203.0.113.9", 60)  # loads the script: EVALSHA after that
    count = lambda: store.count_attempt("signin", "203.0.113.9", 60)  # noqa: E731
    commands = _redis_commands(redis_client, count)
    assert commands.pop("evalsha") == 1
    assert set(commands) <= {"incr", "ttl"}  # run inside the script, no round trip of its own


@pytest.mark.parametrize("backend_env", ["kv-rest"], indirect=True)
def test_rest_counting_an_attempt_is_one_round_trip(store: StateStore, upstash):
    assert store.count_attempt("signin", "203.0.113.9", 60) == (1, 60)
    bodies = upstash.commands()
    assert len(bodies) == 1 and bodies[0][0] == "EVAL"
    assert "203.0.113.9" not in bodies[0][3]  # the address is hashed into the key


@pytest.mark.parametrize("backend_env", ["redis"], indirect=True)
def test_redis_a_call_record_with_its_owner_is_1_round_trip(store: StateStore, redis_client):
    store.record_call("c0", summary="s", metadata={}, client="North")  # loads the script
    record = lambda: store.record_call("c1", summary="s", metadata={"a": 1},  # noqa: E731
                                       client="North Dental")
    # One script: the owner (GET, then SET as it is free) and what the pipeline wrote, the
    # same commands; INFO commandstats counts those run inside a script as well.
    assert _redis_cost(redis_client, record) == ({"evalsha": 1, "get": 1, "set": 3, "xadd": 1,
                                                  "incrby": 1, "expire": 2}, 1)
    # A retry of its client: the owner is read, and ours.
    assert _redis_cost(redis_client, record) == ({"evalsha": 1, "get": 1, "set": 2, "xadd": 1,
                                                  "incrby": 1, "expire": 2}, 1)

    def another_client():
        with pytest.raises(CallBelongsToAnotherClient):
            store.record_call("c1", summary="x", metadata={}, client="South")

    assert _redis_cost(redis_client, another_client) == ({"evalsha": 1, "get": 1}, 1)


def test_redis_an_end_of_call_report_is_1_round_trip(redis_url, prefix, redis_client):
    app = create_app({"REDIS_URL": redis_url, "STATE_STORAGE_PREFIX": prefix})
    report = copy.deepcopy(EOCR_CURRENT)
    warm_up = copy.deepcopy(report)
    warm_up["message"]["call"]["id"] = "call-1"  # connects, loads the script
    assert app.test_client().post("/vapi/webhook", json=warm_up).status_code == 200
    post = lambda: app.test_client().post("/vapi/webhook", json=report)  # noqa: E731
    # The owner, the call and, counted, its 3 skipped steps under one counter: one script.
    assert _redis_cost(redis_client, post) == ({"evalsha": 1, "get": 1, "set": 3, "xadd": 1,
                                                "incrby": 2, "expire": 3}, 1)
    assert app.extensions["state_storage"].call_owner("call-2") == "default"


@pytest.mark.parametrize("backend_env", ["redis"], indirect=True)
def test_redis_that_refuses_set_nx_get_gets_the_script(store: StateStore, redis_client):
    store.backend._set_nx_get = False  # as a server before Redis 7.0 would have it
    store.own_call("c1", "North")
    with pytest.raises(CallBelongsToAnotherClient):
        store.own_call("c1", "South")
    assert store.call_owner("c1") == "North"
    assert 0 < store.backend.ttl(store.key("owner", "c1")) <= store.ttl
    assert "evalsha" in _redis_commands(redis_client, lambda: store.own_call("c1", "North"))


@pytest.mark.parametrize("backend_env", ["kv-rest"], indirect=True)
def test_rest_a_call_record_with_its_owner_is_1_round_trip(store: StateStore, upstash):
    store.record_call("c1", summary="s", metadata={"a": 1}, client="North Dental")
    with pytest.raises(CallBelongsToAnotherClient):
        store.record_call("c1", summary="x", metadata={}, client="South")
    written, refused = upstash.commands()
    hour = store.key("hourly", str(int(time.time() // 3600)), "calls")
    assert written[:2] == ["EVAL", OWNED_SET_MANY_LUA]
    assert written[2:] == [5, store.key("owner", "c1"), store.key("metadata", "c1"),
                           store.key("summary", "c1"), store.key("recent-calls"), hour,
                           "North Dental", 86400, 2, 100, '{"a":1}', "s", "c1", 1]
    assert refused[:2] == ["EVAL", OWNED_SET_MANY_LUA]  # and nothing after it
    assert store.get_call_summary("c1") == "s"


def test_rest_an_end_of_call_report_is_1_request(upstash, prefix):
    app = create_app({"KV_REST_API_URL": upstash.url, "KV_REST_API_TOKEN": REST_TOKEN,
                      "STATE_STORAGE_PREFIX": prefix})
    upstash.server.clear_log()
    assert app.test_client().post("/vapi/webhook", json=EOCR_CURRENT).status_code == 200
    [body] = upstash.commands()
    assert body[:2] == ["EVAL", OWNED_SET_MANY_LUA]
    assert app.extensions["state_storage"].call_owner("call-2") == "default"


def test_redis_a_tool_call_is_3_round_trips_its_log_line_included(redis_url, prefix,
                                                                    redis_client):
    app = create_app({"REDIS_URL": redis_url, "STATE_STORAGE_PREFIX": prefix})
    app.extensions["state_storage"].backend.ping()
    message = {"message": {"type": "tool-calls", "call": {"id": "call-7"}, "toolCallList": [
        {"id": "tc-1", "type": "function", "function": {"name": "no_such_tool",
                                                        "arguments": {}}}]}}
    post = lambda: app.test_client().post("/vapi/webhook", json=message)  # noqa: E731
    # The call's owner (SET NX GET), the claim (SET NX), then the answer with the call's
    # tool-call log in one pipeline.
    assert _redis_cost(redis_client, post) == ({"set": 3, "xadd": 1, "expire": 1}, 3)
    assert [c["name"] for c in app.extensions["state_storage"].tool_calls("call-7")] == \
        ["no_such_tool"]
