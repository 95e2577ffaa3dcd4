"""Payloads in the shapes of reference §9: real captures (vapi4k) and the docs' variants."""

from __future__ import annotations

import copy

CALL_ID = "b1223960-1b4d-4585-91b8-a69b0f57ec2f"

# §9.1, the vapi4k capture (legacy top-level fields, stale call snapshot, ISO timestamp).
EOCR_LEGACY = {"message": {
    "type": "end-of-call-report", "endedReason": "customer-ended-call",
    "transcript": "AI: Hi there. I'm assistant 1.\nUser: What's the weather?\n",
    "summary": "The user inquired about the weather in two California cities.",
    "messages": [{"role": "bot", "message": "Hi there.", "time": 1722115408897}],
    "analysis": {"summary": "The user inquired about the weather.", "successEvaluation": "true"},
    "recordingUrl": "https://auth.vapi.ai/storage/v1/object/public/recordings/x-mono.wav",
    "stereoRecordingUrl": "https://auth.vapi.ai/storage/v1/object/public/recordings/x-stereo.wav",
    "call": {"id": CALL_ID, "orgId": "org-1", "createdAt": "2024-07-27T21:23:24.677Z",
             "type": "inboundPhoneCall", "status": "ringing", "phoneCallProvider": "twilio",
             "phoneNumberId": "4a5a04dc", "customer": {"number": "+14566836490"}},
    "phoneNumber": {"id": "4a5a04dc", "number": "+19254207621", "provider": "twilio"},
    "customer": {"number": "+14566836490"},
    "artifact": {"messages": [], "messagesOpenAIFormatted": []},
    "timestamp": "2024-07-27T21:24:05.712Z",
}}

# The current schema: end-state at message level, contact id in variableValues, epoch-ms time.
EOCR_CURRENT = {"message": {
    "type": "end-of-call-report", "endedReason": "assistant-ended-call",
    "startedAt": "2026-11-25T10:00:00.000Z", "endedAt": "2026-11-25T10:02:30.500Z",
    "cost": 0.1234, "timestamp": 1764064950500,
    "analysis": {"summary": "Booked a cleaning on Tuesday.", "successEvaluation": True,
                 "structuredData": {"booked": True, "service": "cleaning"}},
    "artifact": {"transcript": "AI: Hello\nUser: Hi", "recording": {
        "stereoUrl": "https://storage.vapi.ai/s.wav", "mono": {"combinedUrl": "https://storage.vapi.ai/m.wav"}}},
    "call": {"id": "call-2", "assistantId": "asst-1", "phoneNumberId": "pn-1",
             "assistantOverrides": {"variableValues": {"ghlContactId": "ghl-contact-7"}},
             "customer": {"number": "+14155550123", "name": "Ana Núñez"}},
}}

# §9.2, vapi4k: object arguments in toolCallList and in the legacy toolCalls copy.
TOOL_CALLS = {"message": {
    "type": "tool-calls",
    "toolCallList": [{"id": "call_51kj", "type": "function", "function": {
        "name": "get_call_context", "arguments": {}}}],
    "toolWithToolCallList": [],
    "call": {"id": CALL_ID, "type": "inboundPhoneCall", "status": "ringing"},
    "timestamp": "2024-07-26T22:20:57.931Z",
}}

# §9.3: a plain status-update, and a failed assistant-request one with no call at all.
STATUS_UPDATE = {"message": {"type": "status-update", "status": "ended",
                             "endedReason": "customer-ended-call", "call": {"id": CALL_ID},
                             "timestamp": 1737157773126}}
STATUS_UPDATE_NO_CALL = {"message": {
    "timestamp": 1737157773126, "type": "status-update", "status": "ended",
    "endedReason": "assistant-request-returned-invalid-assistant",
    "inboundPhoneCallDebuggingArtifacts": {"error": "Couldn't Get Assistant"}}}


def status_update(status: str, call_id: str = CALL_ID) -> dict:
    return {"message": {"type": "status-update", "status": status, "call": {"id": call_id}}}


def tool_calls(*items: dict) -> dict:
    payload = copy.deepcopy(TOOL_CALLS)
    payload["message"]["toolCallList"] = list(items)
    return payload
