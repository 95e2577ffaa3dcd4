"""Vapi messages in shapes real traffic has (issue 13), with values of our own.

The shapes, not the captures: field names from vapi-server-sdk 3.0.0 (``Call``, ``BotMessage``,
``UserMessage``, ``ServerMessageToolCalls``) and reference §9; every value is made up here.
"""

from __future__ import annotations

CALL_ID = "5c7e0d2a-91b4-4f6e-8a3d-2e6f1b9c0a47"
CONTACT_ID = "ghl-contact-2024"
CALLER = "+14155550142"
T0 = 1726159264010  # 2024-09-12T16:41:04.010Z, epoch ms: the conversation's first message

# 2024 format: legacy top-level fields, no startedAt/endedAt/durationSeconds/cost, the embedded
# call a snapshot from the call's start ("ringing", cost 0, only createdAt), the conversation in
# the top-level ``messages`` (``artifact.messages`` empty). It lasts until 81.4 s + 2.33 s.
EOCR_2024 = {"message": {
    "type": "end-of-call-report", "endedReason": "customer-ended-call",
    "transcript": "AI: Thanks for calling Harbor Dental.\nUser: Can I move my cleaning?\n",
    "summary": "The caller moved a cleaning to Friday.",
    "messages": [
        {"role": "system", "message": "You book dental visits.", "time": T0,
         "secondsFromStart": 0},
        {"role": "bot", "message": "Thanks for calling Harbor Dental.", "time": T0 + 1180,
         "endTime": T0 + 4960, "secondsFromStart": 1.18, "duration": 3.78, "source": ""},
        {"role": "user", "message": "Can I move my cleaning?", "time": T0 + 6020,
         "endTime": T0 + 9540, "secondsFromStart": 6.02, "duration": 3.52},
        {"role": "tool_calls", "message": "", "time": T0 + 10110, "secondsFromStart": 10.11,
         "toolCalls": [{"id": "call_mv1", "type": "function", "function": {
             "name": "lookup_contact", "arguments": "{}"}}]},
        {"role": "tool_call_result", "name": "lookup_contact", "result": "found",
         "toolCallId": "call_mv1", "time": T0 + 10650, "secondsFromStart": 10.65},
        # ``duration`` here in milliseconds, as some traffic has it: it must not be read.
        {"role": "bot", "message": "Friday at nine it is. Goodbye!", "time": T0 + 81400,
         "endTime": T0 + 83730, "secondsFromStart": 81.4, "duration": 2330, "source": ""},
    ],
    "analysis": {"summary": "The caller moved a cleaning to Friday at 9am.",
                 "successEvaluation": "true"},
    "recordingUrl": "https://storage.example.test/recordings/5c7e-mono.wav",
    "call": {"id": CALL_ID, "orgId": "org-harbor", "createdAt": "2024-09-12T16:40:57.220Z",
             "updatedAt": "2024-09-12T16:40:57.220Z", "type": "inboundPhoneCall",
             "status": "ringing", "cost": 0, "phoneCallProvider": "twilio",
             "phoneNumberId": "pn-harbor", "customer": {"number": CALLER},
             "assistantOverrides": {"variableValues": {"ghlContactId": CONTACT_ID}}},
    "phoneNumber": {"id": "pn-harbor", "number": "+14155550100", "provider": "twilio"},
    "customer": {"number": CALLER},
    "artifact": {"messages": [], "messagesOpenAIFormatted": []},
    "timestamp": "2024-09-12T16:42:31.904Z",
}}

# A tool-calls message carrying only ``toolWithToolCallList``: each item is the tool's
# configuration (its ``function.parameters`` is a JSON schema) plus the call under ``toolCall``.
NOTE_TOOL = {"type": "function", "async": False, "messages": [],
             "function": {"name": "add_note", "description": "Add a note to the caller.",
                          "parameters": {"type": "object",
                                         "properties": {"note": {"type": "string"}}}},
             "server": {"url": "https://bridge.example.test/vapi/webhook"}}


def note_call(tool_call_id: str, note: str) -> dict:
    return {"id": tool_call_id, "type": "function",
            "function": {"name": "add_note", "arguments": f'{{"note": "{note}"}}'}}


TOOL_CALLS_WITH_TOOL_ONLY = {"message": {
    "type": "tool-calls",
    "toolWithToolCallList": [{**NOTE_TOOL, "toolCall": note_call("call_nt1", "Prefers mornings")}],
    "call": {"id": CALL_ID, "type": "inboundPhoneCall", "status": "in-progress",
             "customer": {"number": CALLER}},
    "customer": {"number": CALLER},
    "timestamp": 1726159300125,
}}
