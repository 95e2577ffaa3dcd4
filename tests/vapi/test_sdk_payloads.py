"""Vapi's own message models (vapi-server-sdk 3.0.0), sent the way Vapi sends them.

Each builder makes one ``ServerMessage*`` model; ``wire()`` turns it into the JSON
body Vapi POSTs: ``{"message": {...}}`` with camelCase keys and no ``null`` fields.

Serialization: ``model_dump(mode="json", by_alias=True, exclude_none=True)``. The Fern
models override it to always use aliases, and a field explicitly set to ``None`` is kept
despite ``exclude_none`` (Fern unions an ``exclude_unset`` dump into it), so the builders
never pass ``None`` and ``wire()`` checks that no ``null`` is left.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from vapi.types import (
    Analysis,
    Artifact,
    AssistantOverrides,
    Call,
    CreateCustomerDto,
    OpenAiMessage,
    ServerMessageAssistantRequest,
    ServerMessageAssistantSpeech,
    ServerMessageCallDeleted,
    ServerMessageConversationUpdate,
    ServerMessageEndOfCallReport,
    ServerMessageHang,
    ServerMessageLanguageChangeDetected,
    ServerMessageModelOutput,
    ServerMessagePhoneCallControl,
    ServerMessageSpeechUpdate,
    ServerMessageStatusUpdate,
    ServerMessageToolCalls,
    ServerMessageTranscript,
    ServerMessageTransferDestinationRequest,
    ServerMessageTransferUpdate,
    ServerMessageTransferUpdateDestination_Number,
    ServerMessageUserInterrupted,
    ServerMessageVoiceInput,
    ToolCall,
    ToolCallFunction,
)

from vapi_bridge import create_app

CALL_ID = "0f8e2c4a-6b1d-4e3f-9a7c-5d2b8e1f4a60"
ORG_ID = "7d1e5c2b-3a4f-4b6e-8c9d-0e1f2a3b4c5d"
CONTACT_ID = "ghl-contact-8842"
CUSTOMER_NUMBER = "+14155550199"
ASSISTANT_ID = "asst_1"
TRANSFER_NUMBER = "+14155550123"
SUMMARY = "The caller booked a dental cleaning for Tuesday at 10am."
TRANSCRIPT = "AI: Thanks for calling Bright Smile, how can I help?\nUser: I'd like a cleaning."
RECORDING_URL = f"https://storage.vapi.ai/{CALL_ID}-mono.wav"
CREATED = datetime(2026, 11, 25, 9, 59, 50, tzinfo=UTC)
STARTED = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)
ENDED = STARTED + timedelta(minutes=2, seconds=30.5)
DURATION = 150.5

# Explicit values, so a variable left in the shell cannot switch the backend or turn auth on.
BASE_CONFIG = {"STATE_STORAGE": "memory", "WEBHOOK_TOKEN": "", "VAPI_WEBHOOK_HMAC_SECRET": "",
               "MAX_BODY_BYTES": "", "VAPI_ASSISTANT_ID": "", "VAPI_TRANSFER_NUMBER": ""}
CONFIG = {**BASE_CONFIG, "VAPI_ASSISTANT_ID": ASSISTANT_ID, "VAPI_TRANSFER_NUMBER": TRANSFER_NUMBER}


# Serialization
def wire(message: Any) -> dict[str, Any]:
    """The body Vapi POSTs for ``message``."""
    body = {"message": message.model_dump(mode="json", by_alias=True, exclude_none=True)}
    assert None not in (value for _, value in _items(body)), "a null field reached the wire"
    return body


def _items(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in a JSON document, depth first."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from _items(item)
    elif isinstance(value, list):
        for item in value:
            yield from _items(item)


def ms(moment: datetime) -> float:
    return moment.timestamp() * 1000


# Builders, one per message type
def sdk_call(call_id: str = CALL_ID, status: str = "in-progress") -> Call:
    """The ``call`` object every message carries, as Vapi fills it for an outbound call."""
    return Call(
        id=call_id, org_id=ORG_ID, created_at=CREATED, updated_at=ENDED,
        type="outboundPhoneCall", status=status, assistant_id="asst_7f3e",
        phone_number_id="pn_2b9c", started_at=STARTED,
        assistant_overrides=AssistantOverrides(variable_values={"ghlContactId": CONTACT_ID}),
        customer=CreateCustomerDto(number=CUSTOMER_NUMBER, name="Ana Núñez"),
    )


def end_of_call_report(ended_reason: str = "customer-ended-call") -> ServerMessageEndOfCallReport:
    return ServerMessageEndOfCallReport(
        type="end-of-call-report", ended_reason=ended_reason, timestamp=ms(ENDED),
        call=sdk_call(status="ended"), customer=CreateCustomerDto(number=CUSTOMER_NUMBER),
        analysis=Analysis(summary=SUMMARY, success_evaluation="true"),
        artifact=Artifact(transcript=TRANSCRIPT, recording_url=RECORDING_URL),
        started_at=STARTED, ended_at=ENDED, cost=0.1234,
    )


def status_update(status: str = "in-progress") -> ServerMessageStatusUpdate:
    extra = {"ended_reason": "customer-ended-call"} if status == "ended" else {}
    return ServerMessageStatusUpdate(type="status-update", status=status, timestamp=ms(STARTED),
                                     call=sdk_call(status=status), **extra)


def tool_call(call_id: str, name: str, arguments: str = "{}") -> ToolCall:
    """The SDK types ``function.arguments`` as a string: a JSON-encoded object."""
    return ToolCall(id=call_id, type="function",
                    function=ToolCallFunction(name=name, arguments=arguments))


def with_object_arguments(body: dict[str, Any]) -> dict[str, Any]:
    """What Vapi really sends in ``toolCallList`` (reference §3.1): arguments as an object.

    The SDK cannot model it (``arguments: str``), so the wire body is edited instead.
    """
    for item in body["message"]["toolCallList"]:
        item["function"]["arguments"] = json.loads(item["function"]["arguments"])
    return body


def tool_calls(*calls: ToolCall) -> ServerMessageToolCalls:
    # ``type`` is optional in the SDK (default None): without it the body has no type at all.
    return ServerMessageToolCalls(type="tool-calls", tool_call_list=list(calls),
                                  tool_with_tool_call_list=[], timestamp=ms(STARTED),
                                  call=sdk_call())


def assistant_request() -> ServerMessageAssistantRequest:
    return ServerMessageAssistantRequest(type="assistant-request", timestamp=ms(CREATED),
                                         call=sdk_call(status="ringing"),
                                         customer=CreateCustomerDto(number=CUSTOMER_NUMBER))


def transfer_destination_request() -> ServerMessageTransferDestinationRequest:
    return ServerMessageTransferDestinationRequest(type="transfer-destination-request",
                                                   timestamp=ms(STARTED), call=sdk_call())


def conversation_update() -> ServerMessageConversationUpdate:
    return ServerMessageConversationUpdate(
        type="conversation-update", call=sdk_call(), timestamp=ms(STARTED),
        messages_open_ai_formatted=[OpenAiMessage(role="assistant", content="How can I help?"),
                                    OpenAiMessage(role="user", content="A cleaning, please.")])


def speech_update() -> ServerMessageSpeechUpdate:
    return ServerMessageSpeechUpdate(type="speech-update", status="started", role="user", turn=2,
                                     call=sdk_call(), timestamp=ms(STARTED))


def hang() -> ServerMessageHang:
    return ServerMessageHang(type="hang", call=sdk_call(), timestamp=ms(STARTED))


def user_interrupted() -> ServerMessageUserInterrupted:
    return ServerMessageUserInterrupted(type="user-interrupted", turn_id="turn-3",
                                        call=sdk_call(), timestamp=ms(STARTED))


def model_output() -> ServerMessageModelOutput:
    return ServerMessageModelOutput(type="model-output", output={"content": "Sure, one moment."},
                                    turn_id="turn-3", call=sdk_call(), timestamp=ms(STARTED))


def transcript(message_type: str = "transcript") -> ServerMessageTranscript:
    return ServerMessageTranscript(type=message_type, role="user", transcript_type="final",
                                   transcript="I'd like a cleaning.", call=sdk_call(),
                                   timestamp=ms(STARTED))


def final_transcript() -> ServerMessageTranscript:
    return transcript('transcript[transcriptType="final"]')


def transfer_update() -> ServerMessageTransferUpdate:
    destination = ServerMessageTransferUpdateDestination_Number(number=TRANSFER_NUMBER)
    return ServerMessageTransferUpdate(type="transfer-update", destination=destination,
                                       call=sdk_call(status="forwarding"), timestamp=ms(ENDED))


def language_change_detected() -> ServerMessageLanguageChangeDetected:
    return ServerMessageLanguageChangeDetected(type="language-change-detected", language="es",
                                               call=sdk_call(), timestamp=ms(STARTED))


def voice_input() -> ServerMessageVoiceInput:
    return ServerMessageVoiceInput(type="voice-input", input="One moment please.",
                                   call=sdk_call(), timestamp=ms(STARTED))


def phone_call_control() -> ServerMessagePhoneCallControl:
    return ServerMessagePhoneCallControl(type="phone-call-control", request="hang-up",
                                         call=sdk_call(), timestamp=ms(STARTED))


def assistant_speech() -> ServerMessageAssistantSpeech:
    return ServerMessageAssistantSpeech(type="assistant.speechStarted", text="How can I help?",
                                        turn=1, call=sdk_call(), timestamp=ms(STARTED))


def call_deleted() -> ServerMessageCallDeleted:
    return ServerMessageCallDeleted(type="call.deleted", call=sdk_call(status="ended"),
                                    timestamp=ms(ENDED))


# Types whose answer Vapi does not read: acknowledged and otherwise left alone.
NOTIFICATIONS: list[Callable[[], Any]] = [
    conversation_update, speech_update, hang, user_interrupted, model_output, transcript,
    final_transcript, transfer_update, language_change_detected, voice_input,
    phone_call_control, assistant_speech, call_deleted,
]
ALL_BUILDERS: list[Callable[[], Any]] = [
    end_of_call_report, status_update, assistant_request, transfer_destination_request,
    lambda: tool_calls(tool_call("call_a", "get_call_context")), *NOTIFICATIONS,
]


# Fixtures and helpers
@pytest.fixture
def app():
    return create_app(CONFIG)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def state(app):
    return app.extensions["state_storage"]


def post(client, body: dict[str, Any]) -> Any:
    response = client.post("/vapi/webhook", data=json.dumps(body),
                           content_type="application/json")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _name(builder: Callable[[], Any]) -> str:
    return builder().type


# The wire format itself
@pytest.mark.parametrize("builder", ALL_BUILDERS, ids=_name)
def test_wire_format_is_camel_case_without_nulls(builder):
    body = wire(builder())
    assert body["message"]["type"] == builder().type
    snake = [key for key, _ in _items(body) if re.search(r"[a-z0-9]_[a-z]", key)]
    assert snake == []


def test_wire_format_uses_vapis_field_names():
    eocr = wire(end_of_call_report())["message"]
    assert {"endedReason", "startedAt", "endedAt", "analysis", "artifact"} <= eocr.keys()
    assert eocr["artifact"] == {"transcript": TRANSCRIPT, "recordingUrl": RECORDING_URL}
    assert {"id", "orgId", "createdAt", "updatedAt", "assistantOverrides"} <= eocr["call"].keys()
    assert eocr["call"]["assistantOverrides"] == {"variableValues": {"ghlContactId": CONTACT_ID}}
    assert eocr["startedAt"] == "2026-11-25T10:00:00Z"
    calls = wire(tool_calls(tool_call("call_a", "get_call_context", '{"x": 1}')))["message"]
    assert calls["toolCallList"] == [{"id": "call_a", "type": "function", "function": {
        "name": "get_call_context", "arguments": '{"x": 1}'}}]
    assert calls["toolWithToolCallList"] == []


# end-of-call-report
@pytest.mark.parametrize(("ended_reason", "outcome"), [
    ("customer-ended-call", "completed"),
    ("assistant-said-end-call-phrase", "completed"),
    ("customer-did-not-answer", "no-answer"),
    ("voicemail", "voicemail"),
    ("assistant-forwarded-call", "transferred"),
    ("call.in-progress.error-vapifault-openai-llm-failed", "failed"),
])
def test_end_of_call_report_is_received_and_stored(client, state, ended_reason, outcome):
    assert post(client, wire(end_of_call_report(ended_reason))) == {"status": "received"}

    assert state.get_call_summary(CALL_ID) == SUMMARY
    metadata = state.get_metadata(CALL_ID)
    assert metadata["contact_id"] == CONTACT_ID
    assert metadata["outcome"] == outcome
    assert metadata["duration_seconds"] == DURATION
    assert metadata["ended_reason"] == ended_reason
    assert metadata["cost"] == 0.1234
    assert metadata["customer_number"] == CUSTOMER_NUMBER
    assert metadata["recording_url"] == RECORDING_URL
    assert metadata["success_evaluation"] == "true"
    assert datetime.fromisoformat(metadata["started_at"]) == STARTED
    assert datetime.fromisoformat(metadata["ended_at"]) == ENDED
    assert "transcript" not in metadata


def test_end_of_call_report_without_call_is_rejected(client, state):
    body = wire(end_of_call_report())
    del body["message"]["call"]
    response = client.post("/vapi/webhook", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_payload"
    assert len(state.backend) == 0


# status-update
@pytest.mark.parametrize("status", ["queued", "ringing", "in-progress", "forwarding", "ended"])
def test_status_update_is_received_and_recorded(client, state, status):
    assert post(client, wire(status_update(status))) == {"status": "received"}
    assert state.get_status(CALL_ID) == status


def test_status_update_never_moves_back(client, state):
    post(client, wire(status_update("ended")))
    assert post(client, wire(status_update("ringing"))) == {"status": "received"}
    assert state.get_status(CALL_ID) == "ended"


# tool-calls
def _check_results(results: list[dict], expected: list[tuple[str, str, str]]) -> None:
    """``expected``: (toolCallId, name, "result" | "error"), in order."""
    assert [(item["toolCallId"], item["name"]) for item in results] == [
        (call_id, name) for call_id, name, _ in expected]
    for item, (_, _, kind) in zip(results, expected, strict=True):
        assert set(item) == {"toolCallId", "name", kind}, item
        assert isinstance(item[kind], str) and item[kind]
        assert "\n" not in item[kind] and "\r" not in item[kind]


def test_tool_calls_answer_every_call_in_order(client):
    post(client, wire(status_update("in-progress")))
    body = wire(tool_calls(
        tool_call("call_1", "get_call_context", "{}"),
        tool_call("call_2", "no_such_tool", '{"day": "Tuesday"}'),
        tool_call("call_3", "get_call_context", json.dumps({"callId": CALL_ID})),
    ))

    results = post(client, body)["results"]

    _check_results(results, [("call_1", "get_call_context", "result"),
                             ("call_2", "no_such_tool", "error"),
                             ("call_3", "get_call_context", "result")])
    for item in (results[0], results[2]):
        assert CALL_ID in item["result"]
        assert json.loads(item["result"])["status"] == "in-progress"
    assert "no_such_tool" in results[1]["error"]


def test_tool_calls_with_object_arguments(client, state):
    post(client, wire(end_of_call_report()))
    body = with_object_arguments(wire(tool_calls(
        tool_call("call_1", "no_such_tool", "{}"),
        tool_call("call_2", "get_call_context", json.dumps({"callId": CALL_ID})),
    )))
    assert body["message"]["toolCallList"][1]["function"]["arguments"] == {"callId": CALL_ID}

    results = post(client, body)["results"]

    _check_results(results, [("call_1", "no_such_tool", "error"),
                             ("call_2", "get_call_context", "result")])
    context = json.loads(results[1]["result"])
    assert context["callId"] == CALL_ID
    assert context["summary"] == SUMMARY
    assert context["metadata"]["contact_id"] == CONTACT_ID


def test_tool_call_with_unreadable_arguments_gets_an_error(client):
    body = wire(tool_calls(tool_call("call_1", "get_call_context", "{not json"),
                           tool_call("call_2", "get_call_context", "[1, 2]"),
                           tool_call("call_3", "get_call_context", "{}")))
    results = post(client, body)["results"]
    _check_results(results, [("call_1", "get_call_context", "error"),
                             ("call_2", "get_call_context", "error"),
                             ("call_3", "get_call_context", "result")])


# function-call: legacy, not in the SDK 3.0.0 union, so built by hand in its documented shape.
def test_legacy_function_call_answers_with_result(client):
    body = wire(status_update("ringing"))
    body["message"] = {**body["message"], "type": "function-call",
                       "functionCall": {"name": "get_call_context", "parameters": {}}}
    del body["message"]["status"]
    answer = post(client, body)
    assert set(answer) == {"result"}
    assert CALL_ID in answer["result"] and "\n" not in answer["result"]


# assistant-request and transfer-destination-request
def test_assistant_request_names_the_assistant(client):
    assert post(client, wire(assistant_request())) == {"assistantId": ASSISTANT_ID}


def test_transfer_destination_request_names_the_number(client):
    assert post(client, wire(transfer_destination_request())) == {
        "destination": {"type": "number", "number": TRANSFER_NUMBER},
        "message": {"type": "request-start", "content": "Transferring you now."},
    }


@pytest.mark.parametrize("builder", [assistant_request, transfer_destination_request], ids=_name)
def test_request_messages_without_configuration_answer_an_error(builder):
    client = create_app(BASE_CONFIG).test_client()
    answer = post(client, wire(builder()))
    assert set(answer) == {"error"}
    assert isinstance(answer["error"], str) and answer["error"]


# Everything else
@pytest.mark.parametrize("builder", NOTIFICATIONS, ids=_name)
def test_other_types_are_ignored(client, state, builder):
    assert post(client, wire(builder())) == {"status": "ignored"}
    assert len(state.backend) == 0
