"""What reaches Slack cannot mention or link on its own: call data is escaped for mrkdwn, a
link is made only from a plain http(s) URL, and only ``SLACK_MENTION`` mentions.

Through the whole pipeline, against the local Slack fake; both the Web API and the
incoming-webhook paths. The posted JSON is parsed back and every live ``<...>`` token in it
(text and every block) is accounted for.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.test_pipeline import delivery, post, report
from vapi_bridge import create_app

HOSTILE_URL = "https://r/a.wav|x> <!channel> <https://evil.example|Re-enter password"
HOSTILE = "<!channel> <!here> <@U1> <https://x|y> <!subteam^S1|@team> <#C1> &amp; @channel"
CONTACT_LINK = ("<https://app.gohighlevel.com/v2/location/loc-default/contacts/detail/"
                "ghl-contact-7|Contact in GoHighLevel>")
SAFE_RECORDING = "https://storage.vapi.ai/m.wav?a=1&b=2"
# Slack's control sequences: anything between < and >.
LIVE = re.compile(r"<[^<>]*>")


def hostile_report(recording_url: str = HOSTILE_URL) -> dict[str, Any]:
    payload = report(endedReason=f"customer-ended-call {HOSTILE}",
                     summary=f"Summary {HOSTILE}",
                     analysis={"summary": f"Summary {HOSTILE}"},
                     artifact={"recordingUrl": recording_url})
    payload["message"]["call"]["customer"] = {"number": "+14155550123",
                                              "name": f"Ana {HOSTILE}",
                                              "email": "ana<!here>@example.com"}
    return payload


def texts(node: Any) -> list[str]:
    """Every string Slack reads as message text: ``text`` and each block's text objects."""
    if isinstance(node, dict):
        return [t for value in node.values()
                for t in ([value] if value is node.get("text") and isinstance(value, str)
                          else texts(value))]
    if isinstance(node, list):
        return [t for item in node for t in texts(item)]
    return []


def mrkdwn_objects(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return found


def live_tokens(message: dict[str, Any]) -> list[str]:
    return [token for text in texts({"text": message["text"], "blocks": message["blocks"]})
            for token in LIVE.findall(text)]


@pytest.fixture
def bridge(integrations_env):
    def make(**env):
        return create_app({**integrations_env, **env})

    return make


def slack_path(slack, path: str) -> dict[str, Any]:
    """The settings for posting through the Web API (the default) or an incoming webhook."""
    if path == "web_api":
        return {}
    return {"SLACK_BOT_TOKEN": None, "SLACK_CHANNEL_ID": None,
            "SLACK_WEBHOOK_URL": slack.webhook_url}


@pytest.mark.parametrize("path", ["web_api", "incoming_webhook"])
def test_call_data_never_mentions_or_links_in_slack(bridge, slack, path):
    app = bridge(**slack_path(slack, path))
    assert post(app, hostile_report()).get_json() == {"status": "received"}
    assert delivery(app)["slack"]["status"] == "ok"
    [message] = slack.messages
    # Ours only: the contact link. The hostile recording URL is not a link.
    assert live_tokens(message) == [CONTACT_LINK]
    everything = "\n".join(texts({"text": message["text"], "blocks": message["blocks"]}))
    outside_ours = everything.replace(CONTACT_LINK, "")
    assert "<!" not in outside_ours and "<@" not in outside_ours and "<http" not in outside_ours
    # The data is still shown, escaped: the reader sees what the caller said.
    assert "Ana &lt;!channel&gt; &lt;!here&gt; &lt;@U1&gt;" in message["text"]
    assert "customer-ended-call &lt;!channel&gt;" in message["text"]
    assert "&amp;amp; @channel" in everything
    assert "r/a.wav|x&gt; &lt;!channel&gt; &lt;https://evil.example|Re-enter password" in everything
    assert "ana&lt;!here&gt;@example.com" in everything
    # No automatic parsing (bare URLs, @channel, #names) where call data is shown.
    data_objects = [obj for obj in mrkdwn_objects(message["blocks"]) if "&lt;" in obj["text"]]
    assert data_objects and all(obj.get("verbatim") is True for obj in data_objects)


@pytest.mark.parametrize("path", ["web_api", "incoming_webhook"])
def test_a_safe_recording_url_is_our_link_and_the_mention_is_the_setting(bridge, slack, path):
    app = bridge(SLACK_MENTION="<!subteam^S0OPS>",
                 **slack_path(slack, path))
    post(app, hostile_report(recording_url=SAFE_RECORDING))
    [message] = slack.messages
    recording = "<https://storage.vapi.ai/m.wav?a=1&amp;b=2|Call recording>"
    tokens = live_tokens(message)
    assert sorted(tokens) == sorted(["<!subteam^S0OPS>", "<!subteam^S0OPS>", recording,
                                     CONTACT_LINK])
    assert message["text"].startswith("<!subteam^S0OPS> New call for default:")


@pytest.mark.parametrize("url", [
    "javascript:alert(1)", "https://r/a b.wav", "https://r/a.wav|Re-enter password",
    "https://r/<!channel>", "ftp://r/a.wav", "https://r/a\n.wav", "https://",
])
def test_a_recording_url_that_is_not_plain_http_is_shown_not_linked(bridge, slack, url):
    app = bridge()
    post(app, hostile_report(recording_url=url))
    [message] = slack.messages
    assert live_tokens(message) == [CONTACT_LINK]


def test_a_contact_id_cannot_forge_the_contact_link(bridge, slack):
    app = bridge()
    post(app, report(contact_id="c7|Re-enter-password><!channel>"))
    [message] = slack.messages
    assert "<!channel" not in json.dumps(message)
    # The id is one percent-encoded path segment of our link (or, refused, no link at all).
    recording = "<https://storage.vapi.ai/m.wav|Call recording>"
    assert live_tokens(message) in (
        [recording], [recording, "<https://app.gohighlevel.com/v2/location/loc-default/contacts/detail/"
             "c7%7CRe-enter-password%3E%3C%21channel%3E|Contact in GoHighLevel>"])
