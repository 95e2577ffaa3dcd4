"""One validation per message: marshmallow is handed the fields a schema declares, the rest
of the payload is kept as it came (issue 15)."""

from __future__ import annotations

from typing import ClassVar

from marshmallow import pre_load

from vapi_bridge.vapi import schemas
from vapi_bridge.vapi.messages import parse, peek, validate


class SeenCall(schemas.CallSchema):
    seen: ClassVar[list[list[str]]] = []

    @pre_load
    def _record(self, data, **kwargs):
        self.seen.append(sorted(data))
        return data


class SeenStatusUpdate(schemas.StatusUpdateSchema):
    seen: ClassVar[list[list[str]]] = []
    call = schemas._nested(SeenCall)

    @pre_load
    def _record(self, data, **kwargs):
        self.seen.append(sorted(data))
        return data


def test_marshmallow_sees_only_declared_fields_and_the_rest_is_kept_as_it_came():
    artifact = {"messages": [{"role": "bot", "message": "Hi"}] * 50}
    message = {"type": "status-update", "status": "ended", "artifact": artifact,
               "call": {"id": "call-1", "orgId": "org-1", "monitor": {"listenUrl": "wss://x"},
                        "customer": {"number": "+14155550123", "sipUri": "sip:a@b"}}}
    loaded = validate(SeenStatusUpdate, message)
    assert SeenStatusUpdate.seen == [["call", "status", "type"]]
    assert SeenCall.seen == [["customer", "id"]]
    assert loaded == message
    assert loaded["artifact"] is artifact  # not copied, not walked
    assert loaded["call"]["monitor"] is message["call"]["monitor"]


def test_a_message_we_act_on_keeps_integers_past_64_bits_exact():
    """A C parser would make a float of 2**70 + 1: messages we act on are read by the stdlib
    parser."""
    body = (b'{"message": {"type": "tool-calls", "toolCallList": [{"id": "t1", "function": '
            b'{"name": "x", "arguments": {"n": %d}}}]}}' % (2**70 + 1))
    assert peek(body)["type"] == "tool-calls"
    arguments = parse(body)["toolCallList"][0]["function"]
    assert arguments["arguments"]["n"] == 2**70 + 1
