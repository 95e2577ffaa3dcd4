"""Property tests: no body, however broken, gets a 5xx, a non-JSON answer, or stores garbage.

Four families of bodies, 2,150 examples in all: raw bytes, arbitrary JSON values, near-valid
messages (real types and field names, with plausible or arbitrary values), and bodies over
``MAX_BODY_BYTES``. Each family is one test that builds its own app and runs an inner
``@given`` function, so no function-scoped fixture is shared across examples, and the
store can be checked once the family is done.

The cases at the end are inputs the fuzzing found (or that reading the code it pointed at
found): each was a 500 before 3f5a438 and must stay a 4xx or a 200.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vapi_bridge import create_app
from vapi_bridge.handlers import HANDLERS
from vapi_bridge.storage import check_id
from vapi_bridge.storage.state import ANSWER_PREFIX, CALL_STATUSES, CLAIM_PREFIX, SENT

MAX_BODY_BYTES = 16 * 1024
CONFIG = {"STATE_STORAGE": "memory", "STATE_STORAGE_PREFIX": "vapi", "WEBHOOK_TOKEN": "",
          "VAPI_WEBHOOK_HMAC_SECRET": "", "MAX_BODY_BYTES": str(MAX_BODY_BYTES),
          "VAPI_ASSISTANT_ID": "asst_1", "VAPI_TRANSFER_NUMBER": "+14155550123"}
STORED_KINDS = ("summary", "metadata", "status")

MESSAGE_TYPES = sorted({*HANDLERS, "end-of-call-report", "status-update", "tool-calls",
                        "function-call", "assistant-request", "transfer-destination-request",
                        "conversation-update", "speech-update", "hang", "user-interrupted",
                        "model-output", "transcript", "knowledge-base-request"})
FIELD_NAMES = (
    "type", "call", "id", "status", "endedReason", "toolCallList", "toolCalls", "function",
    "arguments", "functionCall", "name", "parameters", "analysis", "summary", "structuredData",
    "successEvaluation", "artifact", "transcript", "recordingUrl", "stereoRecordingUrl",
    "recording", "mono", "combinedUrl", "startedAt", "endedAt", "timestamp", "cost",
    "durationSeconds", "customer", "number", "assistant", "assistantOverrides",
    "variableValues", "metadata", "ghl", "ghlContactId", "contactId", "externalId",
    "phoneNumber", "callId",
)
CONTENT_TYPES = ("application/json", "application/json; charset=utf-8", "text/plain",
                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None)

# Arbitrary JSON. Hypothesis' text() never makes lone surrogates; JSON can ("\ud800").
scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20))
unpaired_text = st.lists(st.characters(categories=["Cs"]) | st.characters(),
                         min_size=1, max_size=5).map("".join)
json_values = st.recursive(
    scalars | unpaired_text,
    lambda children: (st.lists(children, max_size=4)
                      | st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=20,
)

# Plausible values for the fields the app reads.
good_ids = (st.sampled_from(["call-1", "call-2", "0f8e2c4a-6b1d-4e3f-9a7c-5d2b8e1f4a60"])
            | st.text("abcdef0123456789-_", min_size=1, max_size=40))
ids = good_ids | st.just("") | st.text(max_size=12) | st.text(min_size=250, max_size=300)
offsets = st.timedeltas(min_value=-timedelta(hours=23, minutes=59),
                        max_value=timedelta(hours=23, minutes=59)).map(timezone)
iso_times = (st.datetimes(timezones=st.just(UTC) | offsets).map(datetime.isoformat)
             | st.datetimes().map(lambda moment: moment.isoformat() + "Z"))
huge_ints = st.integers(min_value=-(10**400), max_value=10**400)
times = (iso_times | st.integers(min_value=-(10**20), max_value=10**20) | huge_ints
         | st.floats() | st.text(max_size=30))
numbers = st.integers() | st.floats() | huge_ints
tool_names = st.sampled_from(["get_call_context", "book_appointment", ""]) | st.text(max_size=10)
field_keys = st.sampled_from(FIELD_NAMES) | st.text(max_size=6)
near_json = st.recursive(
    scalars | ids | times,
    lambda children: (st.lists(children, max_size=3)
                      | st.dictionaries(field_keys, children, max_size=5)),
    max_leaves=15,
)
argument_objects = st.dictionaries(st.sampled_from(["callId", "day", "x"]) | st.text(max_size=5),
                                   ids | near_json, max_size=3)
arguments = argument_objects | argument_objects.map(json.dumps) | st.text(max_size=20) | near_json
contact_places = st.fixed_dictionaries({}, optional={
    "ghlContactId": ids | near_json, "contactId": ids | near_json,
    "ghl": st.fixed_dictionaries({}, optional={"contactId": ids}) | near_json,
})


def _some(**fields: st.SearchStrategy) -> st.SearchStrategy[dict]:
    """An object with any subset of ``fields``."""
    return st.fixed_dictionaries({}, optional=fields)


function_objects = _some(name=tool_names, arguments=arguments)
tool_items = _some(id=ids, type=st.just("function") | near_json, function=function_objects,
                   name=tool_names, arguments=arguments, parameters=arguments)
customers = _some(number=st.text(max_size=16), name=st.text(max_size=10), externalId=ids)
overrides = _some(variableValues=contact_places, metadata=contact_places)
calls = st.fixed_dictionaries({"id": ids}, optional={
    "status": st.sampled_from(CALL_STATUSES) | near_json, "customer": customers,
    "assistantOverrides": overrides, "metadata": contact_places, "startedAt": times,
    "endedAt": times, "cost": numbers, "endedReason": st.text(max_size=30),
})
PLAUSIBLE: dict[str, st.SearchStrategy] = {
    "call": calls,
    "status": st.sampled_from([*CALL_STATUSES, "not-found"]),
    "endedReason": st.sampled_from(["customer-ended-call", "voicemail", "customer-busy",
                                    "assistant-forwarded-call", "pipeline-error-x"]),
    "toolCallList": st.lists(tool_items, max_size=4),
    "toolCalls": st.lists(tool_items, max_size=4),
    "function": function_objects,
    "arguments": arguments,
    "parameters": arguments,
    "functionCall": st.fixed_dictionaries({"name": tool_names}, optional={
        "parameters": arguments, "arguments": arguments, "function": function_objects | near_json}),
    "name": tool_names,
    "analysis": _some(summary=st.text(max_size=40) | near_json,
                      structuredData=st.dictionaries(st.text(max_size=5), near_json, max_size=3),
                      successEvaluation=scalars | near_json),
    "artifact": _some(transcript=st.text(max_size=40), recordingUrl=st.text(max_size=20),
                      variableValues=contact_places,
                      recording=_some(stereoUrl=st.text(max_size=20) | near_json,
                                      mono=_some(combinedUrl=st.text(max_size=20)) | near_json)),
    "summary": st.text(max_size=40),
    "startedAt": times, "endedAt": times, "timestamp": times,
    "cost": numbers, "durationSeconds": numbers,
    "customer": customers,
    "assistant": _some(id=ids, metadata=contact_places),
    "assistantOverrides": overrides,
    "variableValues": contact_places, "metadata": contact_places,
    "id": ids, "ghlContactId": ids, "externalId": ids, "contactId": ids, "callId": ids,
}


def plausible_or_not(key: str) -> st.SearchStrategy:
    return PLAUSIBLE.get(key, near_json) | near_json


# Valid-looking messages of each acted-on type: the seed the mutations start from.
valid_calls = st.fixed_dictionaries({"id": good_ids}, optional={
    "status": st.sampled_from(CALL_STATUSES), "customer": _some(number=st.just("+14155550199")),
    "assistantOverrides": _some(variableValues=_some(ghlContactId=good_ids)),
})
TEMPLATE_FIELDS: dict[str, tuple[dict, dict]] = {  # type: (required, optional)
    "end-of-call-report": ({"call": valid_calls}, {
        "endedReason": PLAUSIBLE["endedReason"], "analysis": PLAUSIBLE["analysis"],
        "artifact": PLAUSIBLE["artifact"], "startedAt": iso_times, "endedAt": iso_times,
        "cost": st.floats(0, 10), "timestamp": times, "durationSeconds": numbers,
        "customer": customers, "summary": st.text(max_size=40)}),
    "status-update": ({"status": PLAUSIBLE["status"]}, {
        "call": valid_calls, "endedReason": PLAUSIBLE["endedReason"], "timestamp": times}),
    "tool-calls": ({"toolCallList": PLAUSIBLE["toolCallList"]}, {
        "call": valid_calls, "toolCalls": PLAUSIBLE["toolCalls"], "timestamp": times}),
    "function-call": ({"functionCall": PLAUSIBLE["functionCall"]}, {
        "call": valid_calls, "timestamp": times}),
    "assistant-request": ({}, {"call": valid_calls, "customer": customers, "timestamp": times}),
    "transfer-destination-request": ({}, {"call": valid_calls, "timestamp": times}),
}
templates = st.sampled_from(sorted(TEMPLATE_FIELDS)).flatmap(
    lambda kind: st.fixed_dictionaries({"type": st.just(kind), **TEMPLATE_FIELDS[kind][0]},
                                       optional=TEMPLATE_FIELDS[kind][1]))


@st.composite
def free_messages(draw) -> dict[str, Any]:
    """Any fields named like Vapi's, each plausible or arbitrary, and mostly a real type."""
    keys = draw(st.lists(field_keys, max_size=8, unique=True))
    message = {key: draw(plausible_or_not(key)) for key in keys}
    real_type = st.sampled_from(MESSAGE_TYPES)
    message["type"] = draw(real_type | real_type | real_type | st.text(max_size=12) | near_json)
    return message


def _objects(value: Any) -> list[dict]:
    """Every JSON object inside ``value``, itself included."""
    if isinstance(value, dict):
        return [value, *(found for item in value.values() for found in _objects(item))]
    if isinstance(value, list):
        return [found for item in value for found in _objects(item)]
    return []


@st.composite
def messages(draw) -> dict[str, Any]:
    """A template or a free message, then 0-3 fields set or removed anywhere inside it."""
    message = draw(templates | templates | templates | free_messages())
    for _ in range(draw(st.integers(0, 3))):
        target = draw(st.sampled_from(_objects(message)))
        key = draw(st.sampled_from(sorted(target)) | field_keys) if target else draw(field_keys)
        if draw(st.booleans()) or key not in target:
            target[key] = draw(plausible_or_not(key))
        else:
            del target[key]
    # About 1 in 20 gets text that is not Unicode (a middle value: Hypothesis favours the ends).
    if draw(st.integers(0, 19)) == 7:
        target = draw(st.sampled_from(_objects(message)))
        target[draw(field_keys)] = draw(unpaired_text)
    return message


def _envelope(message: Any, extra: dict) -> bytes:
    return json.dumps({**extra, "message": message}).encode()


raw_bodies = st.binary(max_size=300) | st.text(max_size=100).map(str.encode)
json_bodies = json_values.map(lambda value: json.dumps(value).encode())
message_bodies = st.builds(
    _envelope, messages() | near_json,
    st.dictionaries(st.sampled_from(["call", "type", "id"]) | st.text(max_size=5), near_json,
                    max_size=2),
)
oversized_bodies = st.builds(
    lambda message, size: _envelope({**message, "padding": "x" * size}, {}),
    messages(), st.integers(MAX_BODY_BYTES, 2 * MAX_BODY_BYTES),
)
FAMILIES = {  # name: (bodies, examples)
    "bytes": (raw_bodies, 400),
    "json": (json_bodies, 400),
    "messages": (message_bodies, 1300),
    "oversized": (oversized_bodies, 50),
}


def check_answer(client, body: bytes, content_type: str | None) -> int:
    response = client.post("/vapi/webhook", data=body, content_type=content_type)
    assert response.status_code < 500, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/json", response.get_data(as_text=True)
    answer = json.loads(response.get_data())
    assert isinstance(answer, dict)
    if response.status_code == 200:
        assert set(answer) & {"status", "results", "result", "assistantId", "destination",
                              "error"}, answer
    else:
        assert isinstance(answer.get("error"), str), answer
    return response.status_code


def check_store(app) -> Counter:
    """Only what the handlers mean to store, well-formed: ``vapi:<kind>:<id>[:<id>]``.

    summary, metadata, status and owner hold call data; any other kind is a delivery claim
    (``note:<callId>:<contactId>`` and the like), either taken or done.
    """
    kinds: Counter = Counter()
    for key, (value, _expires) in list(app.extensions["state_storage"].backend._entries.items()):
        prefix, kind, *ids = key.split(":")
        assert prefix == "vapi" and kind and (ids or kind == "recent-calls"), key
        assert all(check_id(part) == part for part in ids), key
        if kind in STORED_KINDS:
            assert len(ids) == 1, key
        if kind == "metadata":
            assert isinstance(json.loads(value), dict), value
        elif kind == "status":  # {"rank": index of the status}
            assert set(value) == {"rank"} and 0 <= value["rank"] < len(CALL_STATUSES), value
        elif kind == "recent-calls":  # a capped log of call ids
            assert not ids, key
            assert all(check_id(call_id) for call_id in value), value
        elif kind == "summary":
            assert isinstance(value, str) and value
        elif kind == "owner":  # the client that first recorded the call
            assert value in {client.name for client in app.config["SETTINGS"].clients}, value
        elif kind == "tool":  # a tool call's stored answer per client, for repeated deliveries
            assert len(ids) == 2 and re.fullmatch("[0-9a-f]{16}", ids[0]), key
            answer = json.loads(value.removeprefix(ANSWER_PREFIX))
            assert value.startswith(ANSWER_PREFIX) and set(answer) <= {"result", "error"}, value
        elif kind == "tool-calls":  # a capped log of the call's tool calls, no arguments
            assert len(ids) == 1, key
            assert all(set(json.loads(entry)) == {"name", "outcome", "at"} for entry in value)
        elif kind == "hourly":  # the status page's counters: <hour>:<name>
            assert len(ids) == 2 and ids[0].isdigit() and int(value) > 0, (key, value)
        else:
            assert len(ids) <= 2, key
            assert value == SENT or re.fullmatch(re.escape(CLAIM_PREFIX) + "[0-9a-f]{32}", value)
        kinds[kind] += 1
    return kinds


@pytest.mark.parametrize("family", FAMILIES)
def test_no_body_gets_a_5xx_or_leaves_garbage(family):
    app = create_app(CONFIG)
    client = app.test_client()
    bodies, examples = FAMILIES[family]
    statuses: Counter = Counter()

    @settings(max_examples=examples, deadline=None, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(body=bodies, content_type=st.sampled_from(CONTENT_TYPES))
    def post_anything(body: bytes, content_type: str | None) -> None:
        status = check_answer(client, body, content_type)
        statuses[status] += 1

    post_anything()

    stored = check_store(app)
    print(f"{family}: answers {dict(statuses)}, stored {dict(stored)}")
    if family == "oversized":
        assert set(statuses) == {413}
    if family == "messages":  # the near-valid bodies must get past validation, and store
        assert statuses[200] and statuses[400], statuses
        assert stored["metadata"] and stored["status"], stored


# Found by the fuzzing above (or by reading the code it pointed at); each was a 500.
REGRESSIONS = {
    # parse_time(): a huge JSON integer / 1000 overflows a float, outside its try.
    "timestamp-huge-int": {"message": {"type": "status-update", "status": "ended",
                                       "timestamp": 10**400}},
    "timestamp-huge-negative-int": {"message": {"type": "tool-calls", "toolCallList": [],
                                                "timestamp": -(10**309)}},
    # FunctionCallSchema does not declare functionCall.function, ToolCall.from_item() reads it.
    "function-call-function-string": {"message": {
        "type": "function-call", "functionCall": {"name": "get_call_context", "function": "x"}}},
    "function-call-function-list": {"message": {
        "type": "function-call", "functionCall": {"name": "get_call_context", "function": [1]}}},
    "function-call-function-name-bool": {"message": {
        "type": "function-call",
        "functionCall": {"name": "get_call_context", "function": {"name": True}}}},
    "function-call-function-name-list": {"message": {
        "type": "function-call",
        "functionCall": {"name": "get_call_context", "function": {"name": ["a"]}}}},
}


@pytest.mark.parametrize("payload", REGRESSIONS.values(), ids=REGRESSIONS)
def test_found_by_fuzzing(payload):
    client = create_app(CONFIG).test_client()
    check_answer(client, json.dumps(payload).encode(), "application/json")


def _nest(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


# Where the app keeps arbitrary JSON from the message. The JSON decoder accepts nesting up to
# about 990 levels; CallReport.to_metadata() (dataclasses.asdict) recursed through
# analysis.structuredData and failed at about 490 (now parse() refuses past MAX_DEPTH, 64).
DEEP_PLACES = {
    "eocr-structuredData": lambda deep: {"type": "end-of-call-report", "call": {"id": "call-1"},
                                         "analysis": {"structuredData": {"x": deep}}},
    "eocr-variableValues": lambda deep: {"type": "end-of-call-report", "call": {
        "id": "call-1", "assistantOverrides": {"variableValues": {"x": deep}}}},
    "eocr-unknown-field": lambda deep: {"type": "end-of-call-report", "call": {"id": "call-1"},
                                        "costs": [deep]},
    "status-update-call-metadata": lambda deep: {"type": "status-update", "status": "ended",
                                                 "call": {"id": "call-1", "metadata": {"x": deep}}},
    "tool-calls-arguments": lambda deep: {"type": "tool-calls", "call": {"id": "call-1"},
                                          "toolCallList": [{"id": "t1", "function": {
                                              "name": "get_call_context",
                                              "arguments": {"callId": deep}}}]},
    "tool-calls-string-arguments": lambda deep: {
        "type": "tool-calls", "call": {"id": "call-1"}, "toolCallList": [{"id": "t1", "function": {
            "name": "get_call_context", "arguments": json.dumps({"x": deep})}}]},
    "function-call-parameters": lambda deep: {"type": "function-call", "functionCall": {
        "name": "get_call_context", "parameters": {"x": deep}}},
}


@pytest.mark.parametrize("depth", [50, 500, 900])
@pytest.mark.parametrize("place", DEEP_PLACES)
def test_deeply_nested_values(place, depth):
    client = create_app(CONFIG).test_client()
    body = json.dumps({"message": DEEP_PLACES[place](_nest(depth))}).encode()
    check_answer(client, body, "application/json")


# A lone surrogate is valid JSON ("\ud800") and a valid Python str, but not UTF-8: the
# memory backend stored it, redis-py could not encode it (a 500), and the Upstash REST fake
# failed on it (a 503).
LONE_SURROGATES = {
    "status-update-call-id": b'{"message": {"type": "status-update", "status": "ended",'
                             b' "call": {"id": "call-\\ud800"}}}',
    "eocr-summary": b'{"message": {"type": "end-of-call-report", "call": {"id": "call-1"},'
                    b' "analysis": {"summary": "Booked \\udfff"}}}',
    "eocr-ended-reason": b'{"message": {"type": "end-of-call-report", "call": {"id": "call-1"},'
                         b' "endedReason": "customer-ended-call\\ud83d"}}',
}


@pytest.mark.parametrize("body", LONE_SURROGATES.values(), ids=LONE_SURROGATES)
def test_lone_surrogates_on_each_backend(backend_env, prefix, body):
    app = create_app({**CONFIG, "STATE_STORAGE": "", "STATE_STORAGE_PREFIX": prefix,
                      **backend_env})
    check_answer(app.test_client(), body, "application/json")
