"""POST /vapi/webhook: error statuses, dispatch per type, what is stored, and how it is answered."""

from __future__ import annotations

import copy
import io
import json

import pytest

from tests.conftest import WEBHOOK_AUTH, WEBHOOK_TOKEN
from tests.vapi.payloads import (
    CALL_ID,
    EOCR_CURRENT,
    EOCR_LEGACY,
    STATUS_UPDATE,
    STATUS_UPDATE_NO_CALL,
    status_update,
    tool_calls,
)
from vapi_bridge import create_app, tools


@pytest.fixture
def app():
    return create_app({})


@pytest.fixture
def client(app):
    return app.test_client()


def post(client, payload, **kwargs):
    data = payload if isinstance(payload, bytes | str) else json.dumps(payload)
    kwargs.setdefault("content_type", "application/json")
    return client.post("/vapi/webhook", data=data, **kwargs)


def state(app):
    return app.extensions["state_storage"]


# Errors
@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe", b"[" * 100_000, "{'a': 1}"])
def test_not_json_is_400_invalid_json(client, body):
    response = post(client, body)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_json"
    assert response.get_json()["message"]


def test_content_type_does_not_matter(client):
    body = json.dumps({"message": {"type": "hang"}})
    assert post(client, body, content_type="text/plain").get_json() == {"status": "ignored"}
    assert post(client, "nope", content_type="text/plain").status_code == 400


@pytest.mark.parametrize(("payload", "field"), [
    ([1, 2], "_schema"),
    (b"\"just a string\"", "_schema"),
    (b"42", "_schema"),
    (b"null", "_schema"),
    ({"type": "end-of-call-report"}, "message"),  # top-level type, no message
    ({"message": "end-of-call-report"}, "message"),
    ({"message": {"status": "ended"}}, "message"),
    ({"message": {"type": 7}}, "message"),
    ({"message": {"type": None}}, "message"),
])
def test_not_a_vapi_envelope_is_400_invalid_payload(client, payload, field):
    response = post(client, payload)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid_payload"
    assert field in body["details"]


def _eocr(**changes):
    payload = copy.deepcopy(EOCR_CURRENT)
    payload["message"].update(changes)
    return payload


@pytest.mark.parametrize(("payload", "path"), [
    (_eocr(call={"assistantId": "a"}), ["message", "call", "id"]),
    (_eocr(call=None), ["message", "call", "id"]),
    (_eocr(call={"id": "bad:id"}), ["message", "call", "id"]),
    (_eocr(call={"id": "x" * 300}), ["message", "call", "id"]),
    (_eocr(call={"id": 12345}), ["message", "call", "id"]),
    (_eocr(cost="a lot"), ["message", "cost"]),
    (_eocr(analysis={"summary": ["not", "text"]}), ["message", "analysis", "summary"]),
    (_eocr(analysis={"structuredData": "booked"}), ["message", "analysis", "structuredData"]),
    (_eocr(timestamp="last tuesday"), ["message", "timestamp"]),
    (_eocr(timestamp=True), ["message", "timestamp"]),
    (_eocr(call={"id": "c1", "customer": {"number": 14155550123}}),
     ["message", "call", "customer", "number"]),
    (status_update(None), ["message", "status"]),
    ({"message": {"type": "status-update"}}, ["message", "status"]),
    (tool_calls({"id": "t1", "function": {"name": "x", "arguments": 42}}),
     ["message", "toolCallList", "0", "function", "arguments"]),
    ({"message": {"type": "tool-calls", "toolCallList": "call_1"}}, ["message", "toolCallList"]),
    ({"message": {"type": "function-call", "functionCall": {"parameters": {}}}},
     ["message", "functionCall", "name"]),
])
def test_wrong_fields_in_messages_we_act_on_are_400_with_details(app, client, payload, path):
    response = post(client, payload)
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["error"] == "invalid_payload"
    details = body["details"]
    for part in path:
        details = details[int(part)] if isinstance(details, dict) and part.isdigit() and int(
            part) in details else details[part]
    assert details
    assert len(state(app).backend) == 0  # nothing stored from a refused message


def test_too_large_is_413_before_the_body_is_read():
    app = create_app({"MAX_BODY_BYTES": "1000"})
    client = app.test_client()
    big = json.dumps({"message": {"type": "hang", "pad": "x" * 2000}})
    response = post(client, big)
    assert response.status_code == 413
    assert response.get_json()["error"] == "request_entity_too_large"
    # Without a Content-Length (chunked), the read itself stops at the limit.
    response = client.post("/vapi/webhook", input_stream=io.BytesIO(big.encode()),
                           headers={"Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413
    small = json.dumps({"message": {"type": "hang"}})
    assert post(client, small).status_code == 200


def test_413_comes_before_401():
    app = create_app({"MAX_BODY_BYTES": "100", "WEBHOOK_TOKEN": "t"})
    assert post(app.test_client(), "x" * 500).status_code == 413


def test_wrong_method_is_405_json(client):
    response = client.get("/vapi/webhook")
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"
    assert response.get_json()["allowed"] == ["OPTIONS", "POST"]


@pytest.mark.parametrize("message_type", [
    "conversation-update", "speech-update", "transcript", "hang", "user-interrupted",
    "model-output", "transcript[transcriptType=\"final\"]", "some-type-vapi-adds-tomorrow",
])
def test_types_we_do_not_act_on_are_ignored(client, message_type):
    response = post(client, {"message": {"type": message_type, "anything": [1, {"x": None}]}})
    assert response.status_code == 200
    assert response.get_json() == {"status": "ignored"}


# What is stored must be storable (depth, lone surrogates): chatter is never stored, so it is
# answered after one parse and a type look-up, never walked (issue 15).
CHATTER_NOBODY_WALKS = {
    "lone-surrogate": b'{"message": {"type": "speech-update", "status": "\\ud800"}}',
    "deep": b'{"message": {"type": "conversation-update", "messages": '
            + b"[" * 100 + b"]" * 100 + b"}}",
    "nan": b'{"message": {"type": "conversation-update", "cost": NaN}}',  # orjson refuses it
}


@pytest.mark.parametrize("body", CHATTER_NOBODY_WALKS.values(), ids=CHATTER_NOBODY_WALKS)
def test_chatter_is_ignored_without_being_walked(app, client, body):
    response = post(client, body)
    assert (response.status_code, response.get_json()) == (200, {"status": "ignored"})
    assert len(state(app).backend) == 0


@pytest.mark.parametrize("body", [CHATTER_NOBODY_WALKS["lone-surrogate"].replace(
    b"speech-update", b"status-update"), CHATTER_NOBODY_WALKS["deep"].replace(
    b"conversation-update", b"status-update")], ids=["lone-surrogate", "deep"])
def test_a_message_we_act_on_is_still_walked(app, client, body):
    response = post(client, body)
    assert response.status_code == 400
    assert response.get_json()["details"]["_schema"][0].startswith(("Nested more", "Contains"))
    assert len(state(app).backend) == 0


# The quick reader decodes the type and the owner's ids and skips the rest: invalid UTF-8 in a
# part it skips is not seen in chatter (never read, never stored), and is still a 400 in a
# message we act on, which the stdlib parser reads whole.
BAD_UTF8_TAIL = b'{"message": {"type": "%s", "messages": ["caf\xe9"], "call": {"id": "c-1"}}}'


def test_chatter_with_invalid_utf8_where_it_is_skipped_is_ignored(app, client):
    response = post(client, BAD_UTF8_TAIL % b"conversation-update")
    assert (response.status_code, response.get_json()) == (200, {"status": "ignored"})
    assert len(state(app).backend) == 0


def test_a_message_we_act_on_with_invalid_utf8_is_still_refused(app, client):
    response = post(client, BAD_UTF8_TAIL % b"status-update")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_json"
    assert len(state(app).backend) == 0


@pytest.mark.parametrize("message_type", [b"status-update", b"end-of-call-report"])
def test_a_surrogate_encoded_as_raw_bytes_is_refused_not_stored(app, client, message_type):
    """ED A0 80 is a surrogate written as UTF-8 bytes: invalid UTF-8. The stdlib parser,
    handed bytes, decodes with "surrogatepass" and used to let it through into the store."""
    body = (b'{"message": {"type": "%s", "status": "in-\xed\xa0\x80progress", "analysis": '
            b'{"summary": "x\xed\xa0\x80"}, "call": {"id": "c-raw-surrogate"}}}' % message_type)
    response = post(client, body)
    assert (response.status_code, response.get_json()["error"]) == (400, "invalid_json")
    assert len(state(app).backend) == 0


# end-of-call-report
def test_end_of_call_report_is_stored_in_one_round_trip(app, client):
    response = post(client, EOCR_CURRENT)
    assert response.status_code == 200
    assert response.get_json() == {"status": "received"}
    assert state(app).get_call_summary("call-2") == "Booked a cleaning on Tuesday."
    metadata = state(app).get_metadata("call-2")
    assert metadata.pop("client") == "default"
    assert {step["status"] for step in metadata.pop("delivery").values()} == {"skipped"}
    assert metadata == {
        "call_id": "call-2", "ended_reason": "assistant-ended-call", "outcome": "completed",
        "customer_number": "+14155550123", "customer_name": "Ana Núñez",
        "started_at": "2026-11-25T10:00:00+00:00", "ended_at": "2026-11-25T10:02:30.500000+00:00",
        "duration_seconds": 150.5, "cost": 0.1234, "summary": "Booked a cleaning on Tuesday.",
        "structured_data": {"booked": True, "service": "cleaning"}, "success_evaluation": "true",
        "recording_url": "https://storage.vapi.ai/m.wav", "contact_id": "ghl-contact-7",
        "assistant_id": "asst-1", "phone_number_id": "pn-1", "lead_name": "Ana Núñez",
        "lead_email": None, "ghl_contact": {}, "ghl_tags": [],
    }


def test_legacy_end_of_call_report_reads_the_fallbacks(app, client):
    assert post(client, EOCR_LEGACY).get_json() == {"status": "received"}
    metadata = state(app).get_metadata(CALL_ID)
    assert state(app).get_call_summary(CALL_ID) == "The user inquired about the weather."
    assert metadata["recording_url"].endswith("x-mono.wav")
    assert metadata["outcome"] == "completed"
    assert metadata["contact_id"] is None
    assert metadata["phone_number_id"] == "4a5a04dc"


def test_summary_falls_back_to_the_legacy_top_level_field(app, client):
    payload = copy.deepcopy(EOCR_LEGACY)
    del payload["message"]["analysis"]
    post(client, payload)
    assert state(app).get_call_summary(CALL_ID).startswith("The user inquired about the weather in")


@pytest.mark.parametrize(("where", "expected"), [
    ({"call": {"id": "c", "assistantOverrides": {"metadata": {"contactId": "k1"}}}}, "k1"),
    ({"call": {"id": "c", "metadata": {"ghl": {"contactId": "k2"}}}}, "k2"),
    ({"call": {"id": "c"}, "assistant": {"metadata": {"ghlContactId": "k3"}}}, "k3"),
    ({"call": {"id": "c"}, "customer": {"externalId": "k4"}}, "k4"),
    ({"call": {"id": "c", "customer": {"externalId": "k5"}}}, "k5"),
    ({"call": {"id": "c", "assistantOverrides": {"variableValues": {"ghlContactId": "k6"}},
               "metadata": {"contactId": "other"}}}, "k6"),
])
def test_contact_id_is_found_where_callers_put_it(app, client, where, expected):
    payload = {"message": {"type": "end-of-call-report", **where}}
    assert post(client, payload).status_code == 200
    assert state(app).get_metadata("c")["contact_id"] == expected


@pytest.mark.parametrize(("reason", "bucket"), [
    ("customer-ended-call", "completed"), ("silence-timed-out", "completed"),
    ("customer-did-not-answer", "no-answer"), ("customer-busy", "no-answer"),
    ("voicemail", "voicemail"), ("assistant-forwarded-call", "transferred"),
    ("customer-ended-call-during-transfer", "transferred"),
    ("call.in-progress.error-transfer-failed", "failed"),
    ("call.start.error-subscription-concurrency-limit-reached", "failed"),
    ("pipeline-error-openai-llm-failed", "failed"), ("assistant-request-returned-error", "failed"),
    ("manually-canceled", "other"), ("hangup", "other"), (None, "other"),
])
def test_ended_reason_buckets(app, client, reason, bucket):
    post(client, {"message": {"type": "end-of-call-report", "endedReason": reason,
                              "call": {"id": "c"}}})
    assert state(app).get_metadata("c")["outcome"] == bucket


def test_report_is_handed_to_the_pipeline(app, client, monkeypatch):
    from vapi_bridge import pipeline

    seen = []
    monkeypatch.setattr(pipeline, "receive", lambda report, ctx, **_: seen.append((report, ctx)))
    post(client, EOCR_CURRENT, headers={"X-Request-ID": "r-1"})
    [(report, ctx)] = seen
    assert (report.call_id, report.contact_id, ctx.call_id, ctx.request_id) == (
        "call-2", "ghl-contact-7", "call-2", "r-1")


# status-update
def test_status_only_moves_forward(app, client):
    for status, expected in [("ringing", "ringing"), ("in-progress", "in-progress"),
                             ("ended", "ended"), ("ringing", "ended"), ("in-progress", "ended"),
                             ("not-found", "ended")]:
        response = post(client, status_update(status))
        assert response.get_json() == {"status": "received"}
        assert state(app).get_status(CALL_ID) == expected


def test_status_update_shapes(app, client):
    assert post(client, STATUS_UPDATE).get_json() == {"status": "received"}
    assert state(app).get_status(CALL_ID) == "ended"
    assert post(client, STATUS_UPDATE_NO_CALL).get_json() == {"status": "received"}


# tool-calls and function-call
def _call(call_id, name, arguments, shape="function"):
    if shape == "function":
        function = {"name": name, "arguments": arguments}
        return {"id": call_id, "type": "function", "function": function}
    return {"id": call_id, "name": name, "arguments": arguments}  # the docs' variant


@pytest.fixture
def echo_tools(monkeypatch):
    def echo(arguments, ctx):
        return arguments

    def multiline(arguments, ctx):
        return "line one\nline two\r\n  line three"

    def broken(arguments, ctx):
        raise RuntimeError("secret internals\nsecond line")

    def refusing(arguments, ctx):
        raise tools.ToolError("I need a phone number\nto do that.")

    for name, function in [("echo", echo), ("multiline", multiline), ("broken", broken),
                           ("refusing", refusing)]:
        monkeypatch.setitem(tools.REGISTRY, name, function)


@pytest.mark.parametrize("arguments", [{"city": "Danville"}, '{"city": "Danville"}'])
@pytest.mark.parametrize("shape", ["function", "top-level"])
def test_tool_arguments_as_object_or_json_string(client, echo_tools, arguments, shape):
    response = post(client, tool_calls(_call("t1", "echo", arguments, shape)))
    assert response.status_code == 200
    assert response.get_json() == {"results": [
        {"toolCallId": "t1", "name": "echo", "result": '{"city": "Danville"}'}]}


def test_legacy_tool_calls_copy_and_parameters_are_read(client, echo_tools):
    payload = {"message": {"type": "tool-calls", "toolCalls": [
        {"id": "t9", "name": "echo", "parameters": {"a": 1}}]}}
    assert post(client, payload).get_json()["results"] == [
        {"toolCallId": "t9", "name": "echo", "result": '{"a": 1}'}]


def test_each_tool_call_fails_alone_and_order_is_kept(client, echo_tools):
    response = post(client, tool_calls(
        _call("t1", "echo", {"n": 1}),
        _call("t2", "no_such_tool", {}),
        _call("t3", "broken", {}),
        _call("t4", "echo", "{not json"),
        _call("t5", "echo", "[1, 2]"),
        _call("t6", "refusing", {}),
        _call("t7", "multiline", None),
    ))
    assert response.status_code == 200
    assert response.get_json() == {"results": [
        {"toolCallId": "t1", "name": "echo", "result": '{"n": 1}'},
        {"toolCallId": "t2", "name": "no_such_tool", "error": "Unknown tool: no_such_tool"},
        {"toolCallId": "t3", "name": "broken", "error": "broken failed. Please try again later."},
        {"toolCallId": "t4", "name": "echo", "error": "The tool arguments are not valid JSON."},
        {"toolCallId": "t5", "name": "echo", "error": "The tool arguments must be a JSON object."},
        {"toolCallId": "t6", "name": "refusing", "error": "I need a phone number to do that."},
        {"toolCallId": "t7", "name": "multiline", "result": "line one line two line three"},
    ]}
    assert "secret internals" not in response.get_data(as_text=True)


def test_get_call_context_reports_what_the_store_knows(client):
    post(client, EOCR_CURRENT)
    post(client, status_update("ended", "call-2"))
    payload = tool_calls(_call("t1", "get_call_context", {}))
    payload["message"]["call"]["id"] = "call-2"
    [result] = post(client, payload).get_json()["results"]
    known = json.loads(result["result"])
    assert "\n" not in result["result"]
    assert known["callId"] == "call-2" and known["status"] == "ended"
    assert known["summary"] == "Booked a cleaning on Tuesday."
    assert known["metadata"]["contact_id"] == "ghl-contact-7"


def test_get_call_context_for_an_unknown_call(client):
    [result] = post(client, tool_calls(_call("t1", "get_call_context", {}))).get_json()["results"]
    assert json.loads(result["result"]) == {"callId": CALL_ID, "known": False}
    [result] = post(client, tool_calls(_call("t2", "get_call_context", {"callId": "a:b"}))
                    ).get_json()["results"]
    assert result["error"] == "I can only look up the current call."


def test_legacy_function_call_uses_the_same_registry(client, echo_tools):
    payload = {"message": {"type": "function-call", "call": {"id": "c"},
                           "functionCall": {"name": "echo", "parameters": '{"x": "y"}'}}}
    assert post(client, payload).get_json() == {"result": '{"x": "y"}'}
    payload["message"]["functionCall"]["name"] = "missing"
    assert post(client, payload).get_json() == {"result": "Unknown tool: missing"}


# assistant-request and transfer-destination-request
def test_assistant_request(client):
    configured = create_app({"VAPI_ASSISTANT_ID": "asst_123"}).test_client()
    payload = {"message": {"type": "assistant-request", "call": {"id": "c"}}}
    assert post(configured, payload).get_json() == {"assistantId": "asst_123"}
    answer = post(client, payload)
    assert answer.status_code == 200 and "error" in answer.get_json()


def test_transfer_destination_request(client):
    configured = create_app({"VAPI_TRANSFER_NUMBER": "+14155550123"}).test_client()
    payload = {"message": {"type": "transfer-destination-request", "call": {"id": "c"}}}
    assert post(configured, payload).get_json() == {
        "destination": {"type": "number", "number": "+14155550123"},
        "message": {"type": "request-start", "content": "Transferring you now."}}
    answer = post(client, payload)
    assert answer.status_code == 200 and "error" in answer.get_json()


# Faults of ours and of the store
def test_store_down_is_503_with_a_request_id_and_the_call_id_in_the_log(caplog):
    # Without the in-process fallback (on by default: see tests/resilience).
    app = create_app({"REDIS_URL": "redis://127.0.0.1:1/0", "STATE_STORAGE_FALLBACK": "none"})
    response = post(app.test_client(), EOCR_CURRENT, headers={"X-Request-ID": "req-7"})
    assert response.status_code == 503
    assert response.get_json() == {"error": "storage_unavailable", "requestId": "req-7"}
    assert "requestId=req-7" in caplog.text and "callId=call-2" in caplog.text
    assert "degraded" not in caplog.text
    # With it, the same report is taken and kept in this process.
    app = create_app({"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert post(app.test_client(), EOCR_CURRENT).get_json() == {"status": "received"}
    assert state(app).get_call_summary("call-2") == "Booked a cleaning on Tuesday."
    assert "[STATE_STORAGE] Redis not answering (ConnectionError): degraded" in caplog.text


def test_a_fault_of_ours_is_500_and_what_was_stored_stays(monkeypatch, caplog):
    from vapi_bridge import pipeline

    def explode(report, ctx, **_):
        raise RuntimeError("pipeline bug")

    # With somewhere to deliver to, the call is stored before the delivery starts.
    app = create_app({"GHL_API_KEY": "pit-1", "GHL_LOCATION_ID": "loc-1",
                      "GHL_API_BASE_URL": "http://127.0.0.1:9", "WEBHOOK_TOKEN": WEBHOOK_TOKEN})
    client = app.test_client()
    monkeypatch.setattr(pipeline, "run", explode)
    response = post(client, EOCR_CURRENT, headers=WEBHOOK_AUTH)
    assert response.status_code == 500
    assert response.get_json()["error"] == "internal_error"
    assert response.get_json()["requestId"] == response.headers["X-Request-ID"]
    assert state(app).get_call_summary("call-2") == "Booked a cleaning on Tuesday."
    assert "callId=call-2" in caplog.text
