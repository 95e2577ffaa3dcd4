"""What each operation costs the store: counted by Redis itself and by the REST server."""

from __future__ import annotations

import pytest

from vapi_bridge.storage import StateStore


def _calls(redis_client) -> dict[str, int]:
    stats = redis_client.info("commandstats")
    return {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}


def _redis_commands(redis_client, operation) -> dict[str, int]:
    before = _calls(redis_client)
    operation()
    after = _calls(redis_client)
    delta = {name: after[name] - before.get(name, 0) for name in after}
    delta["info"] -= 1  # our own INFO
    return {name: n for name, n in delta.items() if n}


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
    # One pipeline: metadata, summary, and the call's place among the recent calls.
    assert _redis_commands(redis_client, record) == {"set": 2, "xadd": 1}
    advance = lambda: store.advance_status("c1", "ringing")  # noqa: E731
    assert _redis_commands(redis_client, advance) == {"zadd": 1, "expire": 1}


@pytest.mark.parametrize("backend_env", ["kv-rest"], indirect=True)
def test_rest_call_report_and_status_are_one_round_trip_each(store: StateStore, upstash):
    store.record_call("c1", summary="s", metadata={"a": 1})
    store.advance_status("c1", "ended")
    store.advance_status("c1", "ringing")
    bodies = upstash.commands()
    assert len(bodies) == 3
    assert [command[:2] for command in bodies[0]] == [
        ["SET", store.key("metadata", "c1")], ["SET", store.key("summary", "c1")],
        ["XADD", store.key("recent-calls")]]
    assert [command[0] for command in bodies[1]] == ["ZADD", "EXPIRE"]  # one /pipeline each
    assert [command[0] for command in bodies[2]] == ["ZADD", "EXPIRE"]
    assert store.get_status("c1") == "ended"


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
