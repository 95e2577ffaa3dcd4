"""``flask vapi-bridge vapi-setup`` against the Vapi fake over sockets, and the tool definitions.

Every body the fake receives is checked against the official SDK's models (``vapi_models``):
a bad one is answered 400 and kept in ``fake.invalid``, which each test asserts empty.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.conftest import WEBHOOK_TOKEN
from tests.fakes import vapi_models  # imported here: the SDK is slow to import in a request
from vapi_bridge import create_app
from vapi_bridge.clients import Client
from vapi_bridge.tools import REGISTRY
from vapi_bridge.tools.definitions import DEFINITIONS, function, runnable
from vapi_bridge.tools.docs import block, doc_file
from vapi_bridge.vapi_setup import MARKER_HEADER, SERVER_MESSAGES

ROOT = Path(__file__).resolve().parent.parent
HOST = "https://bridge.example.com"
WEBHOOK = HOST + "/vapi/webhook"
NORTH_TOKEN = "north-webhook-token-7Qx"
SOUTH_TOKEN = "south-webhook-token-2Lm"
ALL_TOOLS = list(DEFINITIONS)  # API mode with a calendar runs every tool
WORKFLOW_TOOLS = ["send_sms", "upsert_contact", "add_tag", "add_note", "update_stage",
                  "get_call_context"]


@pytest.fixture
def vapi(vapi_api):
    yield vapi_api
    assert vapi_api.invalid == []  # every body the run sent fits the SDK's models


def north(*assistant_ids: str, **fields) -> dict:
    return {"name": "North Dental", "assistant_ids": list(assistant_ids),
            "ghl_api_key": "pit-north", "ghl_location_id": "loc-north",
            "ghl_calendar_id": "cal-north", "webhook_token": NORTH_TOKEN, **fields}


def south(*assistant_ids: str) -> dict:
    return {"name": "South Spa", "assistant_ids": list(assistant_ids),
            "ghl_incoming_webhook_urls": {"default": "https://hooks.example.com/south"},
            "webhook_token": SOUTH_TOKEN}


def setup(vapi, clients: list[dict], *args: str, input: str | None = None, **env):
    settings = {"VAPI_API_BASE_URL": vapi.url, "VAPI_API_KEY": vapi.api_key,
                "WEBHOOK_TOKEN": WEBHOOK_TOKEN, "CLIENTS_JSON": json.dumps(clients),
                "PUBLIC_URL": HOST, **env}
    app = create_app(settings)
    return app.test_cli_runner().invoke(args=["vapi-bridge", *args], input=input)


def seeded(vapi) -> tuple[str, str, list[str]]:
    """North's front desk (two tools of its own, a custom model) and its after-hours line."""
    others = [vapi.add_tool("get_weather", server={"url": "https://weather.example.com"}),
              vapi.add_tool("transfer_to_front_desk", type="transferCall")]
    del vapi.tools[others[1]]["function"]
    desk = vapi.add_assistant("North front desk", others)
    night = vapi.add_assistant("North after hours", [])
    return desk, night, others


def tools_of(vapi, client_name: str) -> dict[str, dict]:
    key = Client(client_name).key
    return {t["function"]["name"]: t for t in vapi.tools.values()
            if (t.get("server") or {}).get("headers", {}).get(MARKER_HEADER) == key}


# the first run, the second run
def test_first_run_creates_the_credential_and_tools_and_patches_the_assistants(vapi):
    desk, night, others = seeded(vapi)
    model_before = copy.deepcopy(vapi.assistants[desk]["model"])

    result = setup(vapi, [north(desk, night)], "vapi-setup", "--yes")

    assert result.exit_code == 0, result.output
    assert [(m, p.split("/")[1]) for m, p, _ in vapi.writes] == (
        [("POST", "credential")] + [("POST", "tool")] * 9 + [("PATCH", "assistant")] * 2)
    (credential,) = vapi.credentials
    assert credential["name"] == "vapi-bridge North Dental"
    assert vapi.tokens[credential["id"]] == NORTH_TOKEN  # the client's own token
    assert NORTH_TOKEN not in result.output
    ours = tools_of(vapi, "North Dental")
    assert sorted(ours) == sorted(ALL_TOOLS)
    for name, tool in ours.items():
        assert tool["function"] == function(name)
        assert tool["server"]["url"] == WEBHOOK
        assert tool["server"]["credentialId"] == credential["id"]
    desk_now = vapi.assistants[desk]
    # The other tools and every model setting survive; only toolIds grew.
    assert desk_now["model"]["toolIds"] == others + [ours[n]["id"] for n in ALL_TOOLS]
    assert {k: v for k, v in desk_now["model"].items() if k != "toolIds"} == \
        {k: v for k, v in model_before.items() if k != "toolIds"}
    assert desk_now["server"] == {"url": WEBHOOK, "credentialId": credential["id"]}
    assert desk_now["serverMessages"] == list(SERVER_MESSAGES)
    assert desk_now["voice"] == {"provider": "11labs", "voiceId": "burt"}
    assert vapi.assistants[night]["model"]["toolIds"] == [ours[n]["id"] for n in ALL_TOOLS]
    assert "applied 12 of 12 change(s)" in result.output


def test_a_second_run_changes_nothing_and_writes_nothing(vapi):
    desk, night, _ = seeded(vapi)
    assert setup(vapi, [north(desk, night)], "vapi-setup", "--yes").exit_code == 0
    written = len(vapi.writes)

    result = setup(vapi, [north(desk, night)], "vapi-setup", "--yes")

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "nothing to change"
    assert len(vapi.writes) == written


def test_tools_a_client_can_no_longer_run_are_detached_from_its_assistants(vapi):
    desk, _night, others = seeded(vapi)
    assert setup(vapi, [north(desk)], "vapi-setup", "--yes").exit_code == 0
    ours = tools_of(vapi, "North Dental")
    no_calendar = {k: v for k, v in north(desk).items() if k != "ghl_calendar_id"}

    result = setup(vapi, [no_calendar], "vapi-setup", "--yes")

    assert result.exit_code == 0, result.output
    assert "-check_availability -book_appointment" in result.output
    kept = [n for n in ALL_TOOLS if n not in ("check_availability", "book_appointment")]
    assert vapi.assistants[desk]["model"]["toolIds"] == others + [ours[n]["id"] for n in kept]
    assert setup(vapi, [no_calendar], "vapi-setup", "--yes").output.strip() == \
        "nothing to change"


def test_a_tool_that_drifted_is_updated_alone_and_keeps_what_vapi_added(vapi):
    desk, _, _ = seeded(vapi)
    assert setup(vapi, [north(desk)], "vapi-setup", "--yes").exit_code == 0
    tool = tools_of(vapi, "North Dental")["add_tag"]
    tool["function"]["description"] = "Old words."
    tool["server"]["timeoutSeconds"] = 30
    written = len(vapi.writes)

    result = setup(vapi, [north(desk)], "vapi-setup", "--yes")

    assert result.exit_code == 0, result.output
    assert '"Old words."' in result.output  # the diff shows old -> new
    assert vapi.writes[written:] == [("PATCH", f"/tool/{tool['id']}", vapi.writes[-1][2])]
    assert tool["function"] == function("add_tag")
    assert tool["server"]["timeoutSeconds"] == 30


# --dry-run and the prompt
def test_dry_run_prints_the_plan_and_writes_nothing(vapi):
    desk, _, _ = seeded(vapi)

    result = setup(vapi, [north(desk)], "vapi-setup", "--dry-run")

    assert result.exit_code == 0, result.output
    assert vapi.writes == []
    lines = result.output.splitlines()
    assert lines[0] == "client North Dental:"
    assert "  create credential vapi-bridge North Dental: Bearer, token from webhook_token" in lines
    assert f"  create tool book_appointment: server {WEBHOOK}" in lines
    (patch,) = [line for line in lines if "assistant" in line]
    assert patch.startswith(f"  update assistant {desk} (North front desk): model.toolIds"
                            " +lookup_contact +check_availability")
    assert "server.url unset -> " in patch
    assert "serverMessages Vapi's default -> end-of-call-report" in patch


def test_without_yes_it_asks_first(vapi):
    desk, _, _ = seeded(vapi)

    declined = setup(vapi, [north(desk)], "vapi-setup", input="n\n")
    assert "Apply 11 change(s) to Vapi? [y/N]" in declined.output
    assert "Nothing written." in declined.output
    assert vapi.writes == []

    accepted = setup(vapi, [north(desk)], "vapi-setup", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert len(vapi.writes) == 11


def test_keep_server_messages_leaves_them(vapi):
    desk, _, _ = seeded(vapi)
    vapi.assistants[desk]["serverMessages"] = ["end-of-call-report", "conversation-update"]

    assert setup(vapi, [north(desk)], "vapi-setup", "--yes", "--keep-server-messages"
                 ).exit_code == 0
    assert vapi.assistants[desk]["serverMessages"] == ["end-of-call-report",
                                                       "conversation-update"]


# several clients in one Vapi account
def test_two_clients_get_their_own_tools_and_never_touch_each_others(vapi):
    desk, _, _ = seeded(vapi)
    spa = vapi.add_assistant("South reception", [])
    assert setup(vapi, [north(desk), south(spa)], "vapi-setup", "--yes").exit_code == 0
    north_tools, south_tools = tools_of(vapi, "North Dental"), tools_of(vapi, "South Spa")
    assert sorted(south_tools) == sorted(WORKFLOW_TOOLS)  # workflow mode, no calendar
    assert not {t["id"] for t in north_tools.values()} & {t["id"] for t in south_tools.values()}
    south_credential = next(c for c in vapi.credentials if c["name"] == "vapi-bridge South Spa")
    assert vapi.tokens[south_credential["id"]] == SOUTH_TOKEN
    assert {t["server"]["credentialId"] for t in south_tools.values()} == {
        south_credential["id"]}
    assert vapi.assistants[spa]["model"]["toolIds"] == [south_tools[n]["id"]
                                                        for n in WORKFLOW_TOOLS]
    written = len(vapi.writes)

    moved = setup(vapi, [north(desk), south(spa)], "vapi-setup", "--yes", "--client",
                  "North Dental", "--url", "https://new-bridge.example.com")

    assert moved.exit_code == 0, moved.output
    touched = {path for _, path, _ in vapi.writes[written:]}
    assert touched == {f"/tool/{t['id']}" for t in north_tools.values()} | {f"/assistant/{desk}"}
    assert {t["server"]["url"] for t in south_tools.values()} == {WEBHOOK}


# failures
def test_a_refused_key_is_named_and_nothing_is_written(vapi):
    desk, _, _ = seeded(vapi)

    result = setup(vapi, [north(desk)], "vapi-setup", "--yes", VAPI_API_KEY="wrong-key")

    assert result.exit_code == 1
    assert "VAPI_API_KEY was refused" in result.output
    assert vapi.writes == []


def test_an_unknown_assistant_is_named_and_the_others_still_set_up(vapi):
    desk, _, _ = seeded(vapi)
    missing = "3b1e7c52-9d0a-4f6e-8c21-7a5d9e0b4f13"

    result = setup(vapi, [north(desk, missing)], "vapi-setup", "--yes")

    assert result.exit_code == 1
    assert f"fail   assistant {missing}: is not in this Vapi account" in result.output
    assert "not applied 1:" in result.output
    assert f"/assistant/{desk}" in {path for _, path, _ in vapi.writes}


def test_a_failed_create_leaves_what_depends_on_it_listed_as_not_applied(vapi):
    desk, _, _ = seeded(vapi)
    vapi.broken["POST /credential"] = 500

    result = setup(vapi, [north(desk)], "vapi-setup", "--yes")

    assert result.exit_code == 1
    assert [(m, p) for m, p, _ in vapi.writes] == [("POST", "/credential")]  # not retried
    assert "applied 0 of 11 change(s)" in result.output
    assert "create credential vapi-bridge North Dental (North Dental): failed: vapi: HTTP 500" \
        in result.output
    assert ("create tool send_sms (North Dental): not applied: <new credential vapi-bridge North"
            " Dental> was not created") in result.output
    assert f"update assistant {desk} (North front desk) (North Dental): not applied" \
        in result.output


def test_a_tool_of_the_same_name_not_made_here_stops_that_assistant(vapi):
    manual = vapi.add_tool("send_sms", server={"url": WEBHOOK})
    desk = vapi.add_assistant("North front desk", [manual])

    result = setup(vapi, [north(desk)], "vapi-setup", "--yes")

    assert result.exit_code == 1
    assert "already has tools that vapi-setup did not make named send_sms" in result.output
    assert vapi.writes_to("assistant") == []
    assert vapi.tools[manual]["server"] == {"url": WEBHOOK}  # never changed


def test_an_hmac_only_client_is_told_what_to_create_by_hand(vapi):
    desk, _, _ = seeded(vapi)
    client = {k: v for k, v in north(desk).items() if k != "webhook_token"}
    client["hmac_secret"] = "north-hmac-secret-5Rt"

    result = setup(vapi, [client], "vapi-setup", "--yes", WEBHOOK_TOKEN=None)

    assert result.exit_code == 1
    assert "create an HMAC custom credential in Vapi by hand" in result.output
    assert "vapi_credential_id of client 'North Dental'" in result.output
    assert vapi.writes == []


def test_a_given_credential_is_used_and_none_created(vapi):
    desk, _, _ = seeded(vapi)
    given = "8c0f3e1a-6b2d-4a9e-b7f5-1d3c2e4a6b8f"
    vapi.credentials.append({"id": given, "provider": "custom-credential", "name": "mine"})

    result = setup(vapi, [north(desk)], "vapi-setup", "--yes",
                   VAPI_SERVER_CREDENTIAL_ID=given)

    assert result.exit_code == 0, result.output
    assert vapi.writes_to("credential") == []
    assert vapi.assistants[desk]["server"]["credentialId"] == given


# check
def test_check_shows_drift_per_assistant_until_vapi_setup_runs(vapi):
    spa = vapi.add_assistant("South reception", [])

    def vapi_lines():
        result = setup(vapi, [south(spa)], "check")
        return [line for line in result.output.splitlines() if "vapi-setup" in line]

    (before,) = vapi_lines()
    assert before.startswith(f"FAIL vapi-setup (South Spa) assistant {spa} (South reception):")
    assert before.endswith("-> run vapi-setup")
    assert setup(vapi, [south(spa)], "vapi-setup", "--yes").exit_code == 0
    assert vapi_lines() == [f"OK   vapi-setup (South Spa) assistant {spa} (South reception):"
                            " server URL, credential, tools, server messages"]
    vapi.assistants[spa]["server"]["url"] = "https://old-host.example.com/vapi/webhook"
    (after,) = vapi_lines()
    assert "server.url" in after and after.endswith("-> run vapi-setup")


def test_check_without_public_url_compares_with_the_assistants_own_url(vapi):
    spa = vapi.add_assistant("South reception", [])

    def vapi_lines():
        result = setup(vapi, [south(spa)], "check", PUBLIC_URL=None)
        return [line for line in result.output.splitlines() if "vapi-setup" in line]

    assert vapi_lines() == ["FAIL vapi-setup (South Spa): fail server URL: no PUBLIC_URL, and no"
                            " assistant has a /vapi/webhook server URL -> set PUBLIC_URL"]
    assert setup(vapi, [south(spa)], "vapi-setup", "--yes").exit_code == 0
    (line,) = vapi_lines()
    assert line.startswith("OK   vapi-setup (South Spa)")


# the tool definitions
def test_every_registered_tool_is_defined_and_fits_the_sdk_model():
    assert set(REGISTRY) == set(DEFINITIONS)
    for name in DEFINITIONS:
        assert vapi_models.create_tool_problems(
            {"type": "function", "function": function(name)}) == [], name


def test_the_documented_tool_definitions_are_the_registry_s():
    text = doc_file(ROOT).read_text(encoding="utf-8")
    assert block() in text, ("the tool definitions block is out of date: run"
                             " python -m vapi_bridge.tools.docs")


@pytest.mark.parametrize(("fields", "tools"), [
    ({"ghl_api_key": "k", "ghl_location_id": "l", "ghl_calendar_id": "c"}, ALL_TOOLS),
    ({"ghl_api_key": "k", "ghl_location_id": "l"},
     [n for n in ALL_TOOLS if n not in ("check_availability", "book_appointment")]),
    ({"ghl_incoming_webhook_urls": {"default": "https://h"}}, WORKFLOW_TOOLS),
    ({"ghl_incoming_webhook_urls": {"booking": "https://h"}}, ["send_sms", "get_call_context"]),
    ({"ghl_calendar_id": "c"}, ["get_call_context"]),  # a calendar needs the API
])
def test_a_client_gets_the_tools_its_configuration_can_run(fields, tools):
    assert sorted(runnable(Client("c", **fields))) == sorted(tools)
