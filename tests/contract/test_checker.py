"""The contract checks themselves: real requests to the real fakes, over sockets."""

from __future__ import annotations

import pytest
import requests

from tests.contract import exceptions, ghl, ledger
from tests.contract.slack import problems
from tests.fakes.slack import FakeSlack

AUTH = {"Authorization": "Bearer pit-test"}
CONTACTS = {**AUTH, "Version": "2021-07-28"}
THIS_FILE = "tests/contract/test_checker.py"


def broken(test: str = f"{THIS_FILE}::none") -> list[str]:
    """What the conftest would fail the test with (and forget it: this test expects it)."""
    return [str(v) for v in ledger.take_violations()
            if not exceptions.exempt(v.operation, v.field, test)]


def test_a_request_the_spec_accepts_passes_and_is_counted(crm):
    before = ledger.requests["GET /contacts/search/duplicate"]
    answer = requests.get(f"{crm.url}/contacts/search/duplicate", headers=CONTACTS,
                          params={"locationId": "loc-1", "number": "+14155550123"}, timeout=5)
    assert answer.status_code == 200
    assert broken() == []
    assert ledger.requests["GET /contacts/search/duplicate"] == before + 1


def test_a_request_to_an_operation_the_spec_does_not_have_fails(crm):
    requests.post(f"{crm.url}/contacts/c1/notez", json={"body": "x"}, headers=CONTACTS, timeout=5)
    requests.patch(f"{crm.url}/contacts/upsert", json={}, headers=CONTACTS, timeout=5)
    assert broken() == [
        "POST /contacts/c1/notez *: no such operation in GoHighLevel's OpenAPI files",
        "PATCH /contacts/upsert *: no such operation in GoHighLevel's OpenAPI files"]


def test_a_version_the_operation_does_not_accept_fails(crm):
    requests.get(f"{crm.url}/contacts/search/duplicate", timeout=5,
                 headers={**AUTH, "Version": "2021-04-15"}, params={"locationId": "loc-1"})
    [violation] = broken()
    assert violation.startswith("GET /contacts/search/duplicate header.Version: ")


def test_a_missing_required_query_parameter_fails(crm):
    requests.get(f"{crm.url}/contacts/search/duplicate", headers=CONTACTS,
                 params={"number": "+14155550123"}, timeout=5)
    assert broken() == ["GET /contacts/search/duplicate query.locationId:"
                        " Missing required query parameter: locationId"
                        " (Missing required query parameter: locationId)"]


def test_a_missing_required_body_field_fails(crm):
    contact_id = crm.add_contact("+14155550123", "loc-1")
    requests.post(f"{crm.url}/contacts/{contact_id}/notes", json={"title": "no body"},
                  headers=CONTACTS, timeout=5)
    assert broken() == ["POST /contacts/{contactId}/notes body.body:"
                        " 'body' is a required property"]


def test_a_field_of_the_wrong_type_fails(crm):
    contact_id = crm.add_contact("+14155550123", "loc-1")
    requests.post(f"{crm.url}/contacts/{contact_id}/tags", json={"tags": "vip"},
                  headers=CONTACTS, timeout=5)
    assert broken() == [  # the fake echoes the tags: its answer is off too
        "POST /contacts/{contactId}/tags body.tags: 'vip' is not of type 'array'",
        "POST /contacts/{contactId}/tags answer 201 body.tags: 'vip' is not of type 'array'"]


def test_a_fake_answer_off_the_spec_fails(crm):
    contact_id = crm.add_contact(4155550123, "loc-1")  # a number, where GoHighLevel has a string
    requests.get(f"{crm.url}/contacts/{contact_id}", headers=CONTACTS, timeout=5)
    assert broken() == ["GET /contacts/{contactId} answer 200 body.contact.phone:"
                        " 4155550123 is not of type 'string'"]


def test_an_exception_covers_only_its_operation_field_and_test(crm):
    ledger.violation("GET /calendars/{calendarId}/free-slots", "answer 200 body.meta.slots", "m")
    ledger.violation("GET /calendars/{calendarId}/free-slots", "answer 200 body.traceId", "m")
    [violation] = broken()  # the first entry is for one test only, the second for all
    assert violation.startswith("GET /calendars/{calendarId}/free-slots answer 200 body.meta")
    owner = next(e.test for e in exceptions.EXCEPTIONS if e.field == "answer 200 body.meta.slots")
    ledger.violation("GET /calendars/{calendarId}/free-slots", "answer 200 body.meta.slots", "m")
    assert broken(owner) == []


@pytest.mark.parametrize("entry", exceptions.EXCEPTIONS, ids=lambda e: f"{e.operation} {e.field}")
def test_every_exception_names_an_operation_of_the_spec_and_says_why(entry):
    method, path = entry.operation.split(" ", 1)
    if entry.operation != "POST /hooks/{id}":  # the one URL outside API v2, on purpose
        app = path.strip("/").split("/")[0]
        assert path in ghl.spec(app).spec["paths"] and method.lower() in \
            ghl.spec(app).spec["paths"][path]
    assert entry.field and entry.spec_says and len(entry.why) > 20


# Slack
@pytest.fixture
def slack_fake():
    fake = FakeSlack().start()
    yield fake
    fake.stop()


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def test_a_good_slack_payload_passes(slack_fake):
    payload = {"text": "New call", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        section("s" * 3000), {"type": "divider"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}]}]}
    answer = requests.post(slack_fake.webhook_url, json=payload, timeout=5)
    assert answer.status_code == 200
    assert broken() == []


def test_an_oversized_slack_section_fails(slack_fake):
    requests.post(slack_fake.webhook_url, json={"text": "t", "blocks": [section("s" * 3001)]},
                  timeout=5)
    [violation] = broken()
    assert violation.startswith("Slack incoming webhook payload: block 0: ")
    assert "3000" in violation


def test_slack_payloads_through_the_web_api_are_checked_too(slack_fake):
    requests.post(f"{slack_fake.api_url}chat.postMessage", timeout=5,
                  headers={"Authorization": "Bearer xoxb-t"},
                  json={"channel": "C1", "text": "t",
                        "blocks": [{"type": "header",
                                    "text": {"type": "plain_text", "text": "h" * 151}}]})
    [violation] = broken()
    assert violation.startswith("Slack chat.postMessage payload: block 0: ")


@pytest.mark.parametrize("payload, problem", [
    ({"text": "t", "blocks": [section("s")] * 51}, "51 blocks, more than 50"),
    ({"text": "t" * 3001, "blocks": []}, "fallback text: 3001 characters, more than 3000"),
    ({"text": "t", "blocks": [{"type": "sectionz", "text": "x"}]},
     "block 0: not a Block Kit block slack-sdk knows"),
    ({"text": "t", "blocks": [{"type": "context", "elements": [
        {"type": "mrkdwn", "text": "c"}] * 11}]}, "block 0: elements attribute cannot exceed 10"),
])
def test_slack_limits(payload, problem):
    assert any(p.startswith(problem) for p in problems(payload)), problems(payload)
