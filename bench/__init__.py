"""Benchmarks: `make bench` runs them all (bench.run_all); each script also runs alone."""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis
from redis.connection import AbstractConnection

from tests.redis_server import redis_url_or_private
from tests.vapi.payloads import EOCR_CURRENT, status_update

# INFO is ours; HELLO, CLIENT SETINFO and PING are the handshake of a new pooled connection.
_NOT_THE_APPS = ("cmdstat_info", "cmdstat_hello", "cmdstat_ping", "cmdstat_client|setinfo")


def redis_command_counts(client: redis.Redis) -> dict[str, int]:
    """Calls of each command the Redis server has run (INFO commandstats), less our INFO
    and handshakes."""
    stats = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()
            if k not in _NOT_THE_APPS}


def redis_commands(client: redis.Redis) -> int:
    return sum(redis_command_counts(client).values())


@contextmanager
def counted_round_trips() -> Iterator[list[int]]:
    """Count, in this process, every time redis-py sends a request and then waits for the
    reply (``Connection.send_packed_command``): one per command, one per whole pipeline.
    A new connection's handshake (HELLO, its first PING) is not counted."""
    send, connect = AbstractConnection.send_packed_command, AbstractConnection.connect_check_health
    count, handshaking = [0], threading.local()

    def counting_send(self: AbstractConnection, command: object, check_health: bool = True):
        if not getattr(handshaking, "active", False):
            count[0] += 1
        return send(self, command, check_health)

    def quiet_connect(self: AbstractConnection, *args: object, **kwargs: object) -> None:
        handshaking.active = True
        try:
            connect(self, *args, **kwargs)
        finally:
            handshaking.active = False

    AbstractConnection.send_packed_command = counting_send
    AbstractConnection.connect_check_health = quiet_connect
    try:
        yield count
    finally:
        AbstractConnection.send_packed_command = send
        AbstractConnection.connect_check_health = connect


def message(kind: str, call_id: str) -> str:
    """The JSON body of a Vapi message of ``kind`` for call ``call_id``: a real
    end-of-call-report (current schema), a status-update moving the call to in-progress, and
    the chatter we ignore: a speech-update and an 80-turn conversation-update (about 40 KB)."""
    if kind == "status-update":
        return json.dumps(status_update("in-progress", call_id))
    if kind == "speech-update":
        return json.dumps({"message": {"type": "speech-update", "status": "started",
                                       "role": "user", "turn": 2, "call": {"id": call_id}}})
    if kind == "conversation-update":
        return json.dumps(conversation_update(call_id, turns=80))
    payload = copy.deepcopy(EOCR_CURRENT)
    payload["message"]["call"]["id"] = call_id
    return json.dumps(payload)


def conversation_update(call_id: str, turns: int) -> dict:
    """What Vapi sends after every turn: the whole conversation so far, twice (its own
    format and OpenAI's), with the call."""
    said = [("bot" if turn % 2 else "user", f"Turn {turn}: " + "I would like a cleaning on "
             "Tuesday morning, around ten if you have it, windows too. " * 2)
            for turn in range(turns)]
    started = 1764064800000
    return {"message": {
        "type": "conversation-update", "timestamp": started + 3000 * turns,
        "messages": [{"role": role, "message": text, "time": started + 3000 * i,
                      "endTime": started + 3000 * i + 2500, "secondsFromStart": 3.0 * i,
                      "duration": 2500, "source": ""} for i, (role, text) in enumerate(said)],
        "messagesOpenAIFormatted": [{"role": "assistant" if role == "bot" else role,
                                     "content": text} for role, text in said],
        "call": {**EOCR_CURRENT["message"]["call"], "id": call_id, "status": "in-progress",
                 "type": "inboundPhoneCall", "orgId": "org-1"}}}


ACTED_ON = ("end-of-call-report", "status-update")
KINDS = (*ACTED_ON, "conversation-update", "speech-update")


def run_alone(measure: Callable[[str], list[dict]], print_rows: Callable[[list[dict]], None]):
    """A bench script on its own: its rows measured on REDIS_URL or a private Redis, printed."""
    logging.disable(logging.WARNING)
    with redis_url_or_private() as url:
        print_rows(measure(url))
