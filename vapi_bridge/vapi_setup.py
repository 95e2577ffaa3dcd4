"""``vapi-setup``: each client's Vapi credential, tools and assistants made to match the bridge.

One code path: ``plan`` reads Vapi and returns the changes as data; ``--dry-run`` and the
confirmation prompt print them, ``apply`` writes them, and ``check`` reports them as drift
(``vapi_setup_report``). Objects created in a run are named in later bodies by a placeholder
(``Change.ref``) until ``apply`` knows their id. Secrets are never printed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .clients import Client
from .config import Settings
from .ids import InvalidId
from .integrations import DeliveryError
from .integrations.vapi_api import VapiApi
from .tools.definitions import function, runnable

WEBHOOK_PATH = "/vapi/webhook"
# Vapi tools are shared by the whole organization: this header on a tool's server says which
# client's it is (a digest of the name). Vapi sends it along; the bridge ignores it.
MARKER_HEADER = "X-Vapi-Bridge-Client"
# What the bridge acts on. assistant-request is not an assistant's to send (Vapi's enum for
# assistant.serverMessages lacks it): it goes to the phone number's or the org's server URL.
SERVER_MESSAGES = ("end-of-call-report", "status-update", "tool-calls",
                   "transfer-destination-request")
REFUSED = "VAPI_API_KEY was refused"


class SetupError(Exception):
    """A failure that ends the run before anything is written."""


@dataclass
class Change:
    client: str
    kind: str  # credential | tool | assistant (server: no URL to compare with)
    name: str
    action: str  # create | update | ok | fail
    detail: list[str] = field(default_factory=list)  # the compact diff, or what is wrong
    target: str | None = None  # the id an update goes to, or the object's id when ok
    body: dict[str, Any] | None = None
    ref: str | None = None  # the placeholder a create stands for in later bodies
    status: str = ""  # after apply: applied, failed: ..., not applied: ...

    @property
    def pending(self) -> bool:
        return self.action in ("create", "update")

    @property
    def failed(self) -> bool:
        return self.action == "fail" or self.status.startswith(("failed", "not applied"))


def webhook_url(url: str | None) -> str:
    """``https://host`` (or the webhook URL itself) as the webhook URL."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SetupError("give --url https://<public host> or set PUBLIC_URL")
    url = str(url).rstrip("/")
    return url if url.endswith(WEBHOOK_PATH) else url + WEBHOOK_PATH


def assistants_of(client: Client) -> tuple[str, ...]:
    """Its ``assistant_ids``, else the assistant it starts calls with (``VAPI_ASSISTANT_ID``)."""
    return client.assistant_ids or ((client.vapi_assistant_id,) if client.vapi_assistant_id
                                    else ())


def clients_to_set_up(settings: Settings, name: str | None) -> list[Client]:
    if name is not None:
        client = settings.clients.by_name(name)
        if client is None:
            raise SetupError(f"no client named {name!r}")
        if not assistants_of(client):
            raise SetupError(f"client {name} has no assistant_ids")
        return [client]
    clients = [c for c in settings.clients if assistants_of(c)]
    if not clients:
        raise SetupError("no client has assistant_ids (or VAPI_ASSISTANT_ID): nothing to set up")
    return clients


def plan(vapi: VapiApi, settings: Settings, clients: Iterable[Client], url: str | None,
         keep_server_messages: bool = False) -> list[Change]:
    """Every change that would make Vapi match; ``url`` None takes each client's current one."""
    credentials, tools = _read(vapi.list_credentials), _read(vapi.list_tools)
    changes: list[Change] = []
    for client in clients:
        changes += _client_plan(vapi, settings, client, credentials, tools, url,
                                keep_server_messages)
    return changes


def _client_plan(vapi: VapiApi, settings: Settings, client: Client,
                 credentials: list[dict[str, Any]], tools: list[dict[str, Any]],
                 url: str | None, keep: bool) -> list[Change]:
    assistants = {assistant_id: _assistant(vapi, assistant_id)
                  for assistant_id in assistants_of(client)}
    url = url or next((a["server"]["url"] for a in assistants.values() if isinstance(a, dict)
                       and str((a.get("server") or {}).get("url", "")).endswith(WEBHOOK_PATH)),
                      None)
    if url is None:
        return [_fail(client, "server", "URL", "no PUBLIC_URL, and no assistant has a"
                      f" {WEBHOOK_PATH} server URL -> set PUBLIC_URL")]
    credential = _credential(settings, client, credentials)
    if credential.action == "fail":
        return [credential]
    credential_id = credential.target or credential.ref
    changes = [credential]
    tool_ids = {}  # function name -> id (or placeholder)
    mine = {_name(t): t for t in tools if _marker(t) == client.key}
    for name in runnable(client):
        change = _tool(client, name, mine.get(name), url, str(credential_id))
        tool_ids[name] = change.target or change.ref
        changes.append(change)
    # Ours, for a tool the client can no longer run (its calendar gone, say): detached.
    retired = {t.get("id"): name for name, t in mine.items() if name not in tool_ids}
    by_id = {t.get("id"): t for t in tools}
    for assistant_id, assistant in assistants.items():
        changes.append(_assistant_change(client, assistant_id, assistant, url,
                                         str(credential_id), tool_ids, by_id, keep, retired))
    return changes


def _credential(settings: Settings, client: Client,
                credentials: list[dict[str, Any]]) -> Change:
    given, source = ((client.vapi_credential_id, "vapi_credential_id") if client.vapi_credential_id
                     else (settings.vapi_server_credential_id, "VAPI_SERVER_CREDENTIAL_ID"))
    if given:
        if not any(c.get("id") == given for c in credentials):
            return _fail(client, "credential", given, f"{source} names a credential this Vapi"
                         " account does not have")
        return Change(client.name, "credential", f"{given} ({source})", "ok", target=given)
    name = f"vapi-bridge {client.name}"
    token = client.webhook_token or settings.webhook_token
    if token is None:
        if client.hmac_secret or settings.hmac_secret:
            return _fail(client, "credential", name, "only an HMAC secret is configured: create an"
                         " HMAC custom credential in Vapi by hand (Integrations > Server"
                         " Configuration) with the same secret, algorithm and headers as the"
                         " VAPI_WEBHOOK_HMAC_* settings, then put its id in "
                         + ("VAPI_SERVER_CREDENTIAL_ID" if client.name == "default"
                            else f"vapi_credential_id of client {client.name!r}"))
        return _fail(client, "credential", name, "no webhook secret: set WEBHOOK_TOKEN or the"
                     " client's webhook_token")
    found = next((c for c in credentials if c.get("provider") == "custom-credential"
                  and c.get("name") == name), None)
    if found is not None:  # Vapi never returns the token: it cannot be compared
        return Change(client.name, "credential", name, "ok", target=found["id"])
    origin = "webhook_token" if client.webhook_token else "WEBHOOK_TOKEN"
    return Change(client.name, "credential", name, "create", [f"Bearer, token from {origin}"],
                  body={"provider": "custom-credential", "name": name,
                        "authenticationPlan": {"type": "bearer", "token": token}},
                  ref=f"<new credential {name}>")


def _tool(client: Client, name: str, have: dict[str, Any] | None, url: str,
          credential_id: str) -> Change:
    server = {"url": url, "credentialId": credential_id, "headers": {MARKER_HEADER: client.key}}
    if have is None:
        return Change(client.name, "tool", name, "create", [f"server {url}"],
                      body={"type": "function", "function": function(name), "server": server},
                      ref=f"<new tool {name} of {client.name}>")
    old_server = have.get("server") or {}
    detail = (_differences("function", have.get("function") or {}, function(name))
              + _differences("server", old_server, server))
    if not detail:
        return Change(client.name, "tool", name, "ok", target=have["id"])
    # Sent whole, so what Vapi or a person added (timeoutSeconds, strict...) is kept.
    body = {"function": {**have["function"], **function(name)},
            "server": {**old_server, **server,
                       "headers": {**(old_server.get("headers") or {}), **server["headers"]}}}
    return Change(client.name, "tool", f"{name} ({have['id']})", "update", detail,
                  target=have["id"], body=body)


def _assistant(vapi: VapiApi, assistant_id: str) -> dict[str, Any] | str:
    """The assistant, or why it cannot be set up."""
    try:
        assistant = vapi.get_assistant(assistant_id)
    except InvalidId:
        return "is not a valid Vapi id (check assistant_ids)"
    except DeliveryError as exc:
        _stop(exc)
        return str(exc)
    return assistant if assistant is not None else "is not in this Vapi account (check" \
        " assistant_ids)"


def _assistant_change(client: Client, assistant_id: str, have: dict[str, Any] | str, url: str,
                      credential_id: str, tool_ids: dict[str, str | None],
                      tools: dict[Any, dict[str, Any]], keep: bool,
                      retired: dict[Any, str]) -> Change:
    if isinstance(have, str):
        return _fail(client, "assistant", assistant_id, have)
    label = assistant_id + (f" ({have['name']})" if have.get("name") else "")
    model = have.get("model")
    if not isinstance(model, dict):
        return _fail(client, "assistant", label, "has no model: choose one in Vapi first")
    attached = list(model.get("toolIds") or [])
    ours = set(tool_ids.values())
    clashes = sorted({_name(tools.get(i)) for i in attached if i not in ours} & set(tool_ids)
                     | {_name(t) for t in model.get("tools") or []} & set(tool_ids))
    if clashes:
        return _fail(client, "assistant", label, "already has tools that vapi-setup did not make"
                     f" named {', '.join(clashes)}: detach them from the assistant in Vapi, then"
                     " run vapi-setup again")
    body: dict[str, Any] = {}
    detail = []
    added = [(name, tool_id) for name, tool_id in tool_ids.items() if tool_id not in attached]
    removed = [retired[tool_id] for tool_id in attached if tool_id in retired]
    if added or removed:  # the model goes back as read, with only toolIds changed
        body["model"] = {**model, "toolIds": [i for i in attached if i not in retired]
                         + [tool_id for _, tool_id in added]}
        detail.append("model.toolIds " + " ".join(
            [f"-{name}" for name in removed] + [f"+{name}" for name, _ in added]))
    server = have.get("server") or {}
    wanted = {"url": url, "credentialId": credential_id}
    if differences := _differences("server", server, wanted):
        body["server"] = {**server, **wanted}
        detail += differences
    messages = have.get("serverMessages")
    if not keep and (messages is None or sorted(messages) != sorted(SERVER_MESSAGES)):
        body["serverMessages"] = list(SERVER_MESSAGES)
        detail.append("serverMessages " + (
            "Vapi's default -> " + ", ".join(SERVER_MESSAGES) if messages is None else " ".join(
                [f"-{m}" for m in messages if m not in SERVER_MESSAGES]
                + [f"+{m}" for m in SERVER_MESSAGES if m not in messages])))
    if not body:
        return Change(client.name, "assistant", label, "ok", target=assistant_id)
    return Change(client.name, "assistant", label, "update", detail, target=assistant_id,
                  body=body)


# apply
def apply(vapi: VapiApi, changes: list[Change]) -> None:
    """Write the pending changes in order; each one's ``status`` says what became of it."""
    refs = {change.ref for change in changes if change.ref}
    created: dict[str, str] = {}
    stopped = None
    for change in filter(lambda c: c.pending, changes):
        missing = sorted(_strings(change.body) & (refs - set(created)))
        if stopped or missing:
            change.status = f"not applied: {stopped or missing[0] + ' was not created'}"
            continue
        body = _resolve(change.body, created)
        try:
            if change.action == "update" and change.kind == "tool":
                vapi.update_tool(str(change.target), body)
            elif change.kind == "assistant":
                vapi.update_assistant(str(change.target), body)
            else:
                create = vapi.create_credential if change.kind == "credential" else vapi.create_tool
                created[str(change.ref)] = create(body)["id"]
        except DeliveryError as exc:
            change.status = f"failed: {exc}"
            if exc.status in (401, 403):
                stopped, change.status = REFUSED, f"failed: {REFUSED} ({exc})"
            continue
        change.status = "applied"


def _resolve(value: Any, created: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {key: _resolve(item, created) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item, created) for item in value]
    return created.get(value, value) if isinstance(value, str) else value


def _strings(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*map(_strings, value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*map(_strings, value)) if value else set()
    return {value} if isinstance(value, str) else set()


def _differences(prefix: str, have: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """What differs in the keys ``want`` sets; the rest of ``have`` is not ours to judge."""
    lines = []
    for key, value in want.items():
        old = have.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and key != "parameters":
            lines += _differences(f"{prefix}.{key}", old, value)
        elif old != value:
            lines.append(f"{prefix}.{key} " + ("changed" if key == "parameters" else
                                               f"{_brief(old)} -> {_brief(value)}"))
    return lines


def _brief(value: Any) -> str:
    text = "unset" if value is None else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _marker(tool: dict[str, Any]) -> str | None:
    headers = (tool.get("server") or {}).get("headers") or {}
    ours = tool.get("type") == "function" and isinstance(tool.get("function"), dict)
    return headers.get(MARKER_HEADER) if ours and isinstance(headers, dict) else None


def _name(tool: dict[str, Any] | None) -> str | None:
    return ((tool or {}).get("function") or {}).get("name")


def _fail(client: Client, kind: str, name: str, problem: str) -> Change:
    return Change(client.name, kind, name, "fail", [problem])


def _read(read: Any) -> list[dict[str, Any]]:
    try:
        return read()
    except DeliveryError as exc:
        _stop(exc)
        raise SetupError(f"Vapi refused the read ({exc})") from None


def _stop(exc: DeliveryError) -> None:
    """A refused key or an unreachable Vapi ends the run: every other request would fail too."""
    if exc.status in (401, 403):
        raise SetupError(f"{REFUSED} ({exc}) -> set VAPI_API_KEY to a Vapi private API key")
    if exc.retryable:
        raise SetupError(f"Vapi unreachable ({exc}) -> check VAPI_API_BASE_URL and the network")
