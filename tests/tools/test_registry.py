"""The tool runner: once per toolCallId, bounded concurrency in order, and the deadline."""

from __future__ import annotations

import json
import threading
import time

import pytest

from vapi_bridge import create_app, tools


def tool_calls(*calls):
    return {"message": {"type": "tool-calls", "call": {"id": "c1", "assistantId": "a1",
                                                       "customer": {"number": "+14155550123"}},
                        "toolCallList": [{"id": tid, "type": "function",
                                          "function": {"name": name, "arguments": args}}
                                         for tid, name, args in calls]}}


def post(app, payload):
    response = app.test_client().post("/vapi/webhook", data=json.dumps(payload),
                                      content_type="application/json")
    assert response.status_code == 200
    return response.get_json()["results"]


@pytest.fixture
def counted(monkeypatch):
    runs = []
    lock = threading.Lock()

    def counter(arguments, ctx):
        with lock:
            runs.append((arguments, ctx.customer_number, ctx.client.name))
            number = len(runs)
        time.sleep(float(arguments.get("sleep", 0)))
        if arguments.get("fail") == "retryable":
            from vapi_bridge.integrations import DeliveryError
            raise DeliveryError("ghl", "HTTP 503", status=503, retryable=True)
        return f"run {number}"

    monkeypatch.setitem(tools.REGISTRY, "counter", counter)
    return runs


def test_a_repeated_tool_call_id_runs_once_and_gets_the_same_answer(counted, backend_env):
    app = create_app(backend_env | {"STATE_STORAGE_PREFIX": f"vbtest{time.time_ns()}"})
    first = post(app, tool_calls(("tc-1", "counter", {})))
    again = post(app, tool_calls(("tc-1", "counter", {})))
    assert first == again == [{"toolCallId": "tc-1", "name": "counter", "result": "run 1"}]
    assert len(counted) == 1
    assert counted[0][1:] == ("+14155550123", "default")


def test_a_passing_outage_lets_the_repeat_run_again(counted):
    app = create_app({})
    [answer] = post(app, tool_calls(("tc-1", "counter", {"fail": "retryable"})))
    assert answer["error"].startswith("The CRM is not answering right now")
    post(app, tool_calls(("tc-1", "counter", {"fail": "retryable"})))
    assert len(counted) == 2


def test_a_repeat_during_the_first_run_waits_for_its_answer(counted):
    app = create_app({})
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        post(app, tool_calls(("tc-1", "counter", {"sleep": 0.5})))[0])) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(counted) == 1
    assert results == [{"toolCallId": "tc-1", "name": "counter", "result": "run 1"}] * 3


def test_calls_run_concurrently_and_answer_in_order(counted):
    app = create_app({})
    started = time.monotonic()
    answers = post(app, tool_calls(*[(f"tc-{n}", "counter", {"sleep": 0.4}) for n in range(4)]))
    elapsed = time.monotonic() - started
    assert [a["toolCallId"] for a in answers] == ["tc-0", "tc-1", "tc-2", "tc-3"]
    assert sorted(a["result"] for a in answers) == ["run 1", "run 2", "run 3", "run 4"]
    assert elapsed < 1.2  # four 0.4 s tools side by side, not 1.6 s in a row


def test_a_slow_tool_answers_an_error_by_the_deadline(counted):
    app = create_app({"TOOL_DEADLINE_SECONDS": "0.5"})
    started = time.monotonic()
    answers = post(app, tool_calls(("tc-slow", "counter", {"sleep": 2}),
                                   ("tc-fast", "counter", {})))
    assert time.monotonic() - started < 1.5
    assert answers[0] == {"toolCallId": "tc-slow", "name": "counter", "error": tools.TOO_SLOW}
    assert answers[1]["result"].startswith("run")
    time.sleep(1.8)  # the slow one finishes in the background and stores its answer
    [later] = post(app, tool_calls(("tc-slow", "counter", {"sleep": 2})))
    assert later["result"].startswith("run") and len(counted) == 2
