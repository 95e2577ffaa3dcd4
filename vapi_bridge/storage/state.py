"""The service's state, written once over any backend.

Keys are the seed's: ``<prefix>:summary:<callId>``, ``<prefix>:metadata:<callId>``,
``<prefix>:note:<callId>:<contactId>``; every key is written with the TTL. A call belongs to
the client that first recorded it: ``<prefix>:owner:<callId>`` holds that client's name.
The tools keep the caller's contact id under ``<prefix>:caller-contact:<callId>:<client>``, and
``update_stage`` the opportunity it moved under
``<prefix>:opportunity:<callId>:<client>:<contactId>:<pipelineId>``.
``<prefix>:tool-calls:<callId>`` logs the call's tool calls (name, outcome, time) and
``<prefix>:hourly:<hour>:<name>`` counts calls and delivery outcomes per hour (the status
page's picture), both written in the same round trip as what they describe or count.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Sequence
from typing import Any

from .access import AccessState
from .base import Backend, StorageError

log = logging.getLogger(__name__)

# An id becomes part of a key: no separators, whitespace or control characters.
_VALID_ID = re.compile(r"[^\s:\x00-\x1f\x7f-\x9f]{1,256}")
# The seed's @vercel/kv client stored the boolean ``true`` as this string.
SENT = "true"
CLAIM_PREFIX = "claim:"
ANSWER_PREFIX = "answer:"
_MAX_OPEN_CLAIMS = 10_000
# Vapi's call statuses in the order a call moves through them.
CALL_STATUSES = ("scheduled", "queued", "ringing", "in-progress", "forwarding", "ended")
RECENT_CALLS = 50  # what the status page lists: the log keeps twice that (repeats)
TOOL_CALLS_KEPT = 50  # per call: the newest are kept


class CallBelongsToAnotherClient(Exception):
    """A call id another client recorded first: nothing of that call may be touched."""

    def __init__(self, call_id: str, client: str, owner: str):
        super().__init__(f"call {call_id} belongs to another client")
        self.call_id, self.client, self.owner = call_id, client, owner


def check_id(value: object, what: str = "id") -> str:
    """Return ``value`` if it is safe inside a key, else raise ``ValueError``."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string")
    if len(value) > 256:
        raise ValueError(f"{what} must be at most 256 characters (got {len(value)})")
    if not _VALID_ID.fullmatch(value):
        raise ValueError(f"{what} must not contain ':', whitespace or control characters")
    return value


class StateStore(AccessState):
    """Calls, claims, answers and what the tools keep for a call; sign-in attempts, sessions
    and signatures come from ``AccessState``."""

    def __init__(self, backend: Backend, *, prefix: str = "vapi", ttl: int = 86400):
        self.backend = backend
        self.prefix = prefix
        self.ttl = ttl
        # Tokens of the claims this process holds, so release only undoes our own.
        self._claims: OrderedDict[str, str] = OrderedDict()
        self._claims_lock = threading.Lock()

    def key(self, kind: str, *ids: str) -> str:
        return ":".join([self.prefix, kind, *ids])

    # Call summaries
    def store_call_summary(self, call_id: str, summary: str) -> None:
        self.backend.set(self.key("summary", check_id(call_id, "call_id")), summary, ex=self.ttl)
        log.info("[STATE_STORAGE] Summary stored callId=%s storage=%s", call_id, self.backend.label)

    def get_call_summary(self, call_id: str) -> str | None:
        summary = self.backend.get(self.key("summary", check_id(call_id, "call_id")))
        log.info("[STATE_STORAGE] Summary retrieved callId=%s found=%s storage=%s",
                 call_id, summary is not None, self.backend.label)
        return summary

    # Call metadata (a JSON object)
    def store_metadata(self, call_id: str, metadata: dict[str, Any], *,
                       count: Sequence[str] = ()) -> None:
        """Write the metadata; ``count`` adds one per name to this hour's counters (same
        round trip)."""
        key = self.key("metadata", check_id(call_id, "call_id"))
        if not count:
            self.backend.set(key, _json_object(metadata), ex=self.ttl)
            return
        self.backend.set_many({key: _json_object(metadata)}, ex=self.ttl,
                              incr=self._hourly(count))

    def get_metadata(self, call_id: str) -> dict[str, Any] | None:
        value = self.backend.get(self.key("metadata", check_id(call_id, "call_id")))
        return json.loads(value) if value is not None else None

    def recent_calls(self, limit: int = RECENT_CALLS) -> list[dict[str, Any]]:
        """The metadata of the last calls recorded, newest first (expired ones left out)."""
        # A report delivered twice (a Vapi retry, a replay) is logged twice: shown once.
        ids = list(dict.fromkeys(self.backend.latest(self.key("recent-calls"), 2 * limit)))
        ids = ids[:limit]
        values = self.backend.get_many([self.key("metadata", call_id) for call_id in ids])
        return [{"call_id": call_id, **json.loads(value)}
                for call_id, value in zip(ids, values, strict=True) if value]

    def record_call(self, call_id: str, *, summary: str | None, metadata: dict[str, Any],
                    client: str | None = None, count: Sequence[str] = ()) -> None:
        """Summary and metadata of an ended call, listed among the recent calls and counted
        in this hour's ``calls`` (and ``count``'s names): one round trip.

        With ``client``, the call is also claimed for it (as ``own_call``) in that same round
        trip: a call of another client raises ``CallBelongsToAnotherClient``, nothing written.
        """
        check_id(call_id, "call_id")
        items = {self.key("metadata", call_id): _json_object(metadata)}
        if summary:
            items[self.key("summary", call_id)] = summary
        # The recent calls: a log capped in the same command (XADD MAXLEN), bounded for free.
        recent = (self.key("recent-calls"), call_id, 2 * RECENT_CALLS)
        owner = (self.key("owner", call_id), client) if client is not None else None
        other = self.backend.set_many(items, ex=self.ttl, append=recent,
                                      incr=self._hourly(["calls", *count]), owner=owner)
        if other is not None and client is not None:
            raise CallBelongsToAnotherClient(call_id, client, other)
        # DEBUG: the pipeline's "[END_OF_CALL] Delivered" line is the one line of a report.
        log.debug("[STATE_STORAGE] Call recorded callId=%s summary=%s storage=%s",
                 call_id, bool(summary), self.backend.label)

    # Per-hour counters: what the status page draws for the last hours.
    def _hourly(self, names: Sequence[str], now: float | None = None) -> dict[str, int]:
        hour = str(int((time.time() if now is None else now) // 3600))
        return dict(Counter(self.key("hourly", hour, name) for name in names))

    def hourly(self, names: Sequence[str], hours: int = 24,
               now: float | None = None) -> list[tuple[float, dict[str, int]]]:
        """(hour's start, {name: count}) for the last ``hours`` hours, oldest first: one MGET."""
        last = int((time.time() if now is None else now) // 3600)
        starts = range(last - hours + 1, last + 1)
        values = iter(self.backend.get_many([self.key("hourly", str(hour), name)
                                             for hour in starts for name in names]))
        return [(hour * 3600.0, {name: int(next(values) or 0) for name in names})
                for hour in starts]

    # Tool calls made during a call: a capped log that expires with the call's other keys.
    def record_tool_call(self, call_id: str, name: str, outcome: str,
                         at: float | None = None) -> None:
        """Log one tool call of ``call_id`` (no arguments, no result): one round trip."""
        self.backend.set_many({}, ex=self.ttl, append=self.tool_call_entry(call_id, name,
                                                                           outcome, at))

    def tool_call_entry(self, call_id: str, name: str, outcome: str,
                        at: float | None = None) -> tuple[str, str, int]:
        """The log line of one tool call, as ``store_answer(log=...)`` writes it along."""
        entry = json.dumps({"name": name[:64], "outcome": outcome,
                            "at": time.time() if at is None else at}, ensure_ascii=False)
        return self.key("tool-calls", check_id(call_id, "call_id")), entry, TOOL_CALLS_KEPT

    def tool_calls(self, call_id: str) -> list[dict[str, Any]]:
        """The call's logged tool calls, oldest first."""
        key = self.key("tool-calls", check_id(call_id, "call_id"))
        return [json.loads(entry) for entry in reversed(self.backend.latest(key, TOOL_CALLS_KEPT))]

    # Ownership: one command (SET NX GET), so the first recorder wins even among racers.
    def own_call(self, call_id: str, client: str) -> None:
        """Make ``client`` the call's owner unless it has one; raise if another client owns it."""
        key = self.key("owner", check_id(call_id, "call_id"))
        owner = self.backend.set_or_get(key, client, ex=self.ttl)
        if owner is not None and owner != client:
            raise CallBelongsToAnotherClient(call_id, client, owner)

    def call_owner(self, call_id: str) -> str | None:
        return self.backend.get(self.key("owner", check_id(call_id, "call_id")))

    # Call status: only ever moves forward (a late "ringing" never overwrites "ended").
    # A one-member sorted set whose score is the status's rank: ZADD GT keeps it monotonic
    # in one command (plus its EXPIRE), one round trip.
    def advance_status(self, call_id: str, status: str) -> bool:
        """Record ``status`` if it is later than the stored one; say whether it was."""
        key = self.key("status", check_id(call_id, "call_id"))
        if status not in CALL_STATUSES:
            return False
        return self.backend.zadd(key, "rank", CALL_STATUSES.index(status), gt=True, ex=self.ttl)

    def get_status(self, call_id: str) -> str | None:
        rank = self.backend.zscore(self.key("status", check_id(call_id, "call_id")), "rank")
        return CALL_STATUSES[int(rank)] if rank is not None else None

    # Notes: one per call and contact (the seed's API, over the generic claims below)
    def claim_note(self, call_id: str, contact_id: str) -> bool:
        """Atomically take the right to send this note; exactly one claimer wins."""
        return self.claim("note", call_id, contact_id)

    def release_note(self, call_id: str, contact_id: str) -> bool:
        """Give back our claim after a failed delivery, so a retry can claim again."""
        return self.release("note", call_id, contact_id)

    def was_note_sent(self, call_id: str, contact_id: str) -> bool:
        return self.is_done("note", call_id, contact_id)

    def mark_note_sent(self, call_id: str, contact_id: str) -> None:
        self.mark_done("note", call_id, contact_id)

    # Claims: "do this once" for any kind of delivery (note, tags, slack...).
    # SET NX with a random token; released by compare-and-delete; "done" once marked.
    def claim(self, kind: str, *ids: str, ttl: int | None = None) -> bool:
        key = self._claim_key(kind, ids)
        token = CLAIM_PREFIX + secrets.token_hex(16)
        # A lost reply whose SET was retried by the driver finds our own token.
        won = (self.backend.set(key, token, ex=ttl or self.ttl, nx=True)
               or self.backend.get(key) == token)
        if won:
            with self._claims_lock:
                self._claims[key] = token
                if len(self._claims) > _MAX_OPEN_CLAIMS:
                    self._claims.popitem(last=False)
        log.debug("[STATE_STORAGE] Claim %s key=%s", "won" if won else "lost", key)
        return won

    def release(self, kind: str, *ids: str) -> bool:
        """Undo our own claim (never another process's, never a done mark)."""
        key = self._claim_key(kind, ids)
        with self._claims_lock:
            token = self._claims.get(key)
        if token is None:
            return False
        released = self.backend.delete_if_equals(key, token)
        self._forget_claim(key)
        return released

    def is_done(self, kind: str, *ids: str) -> bool:
        """Marked done, or done with an answer kept (``store_answer``)."""
        value = self.backend.get(self._claim_key(kind, ids))
        return value == SENT or bool(value and value.startswith(ANSWER_PREFIX))

    def mark_done(self, kind: str, *ids: str) -> None:
        key = self._claim_key(kind, ids)
        self.backend.set(key, SENT, ex=self.ttl)
        self._forget_claim(key)

    # Answers: a claim's value can become the answer a repeated request gets back
    # (a tool call's result, the call an outbound request started).
    def store_answer(self, kind: str, ids: tuple[str, ...], answer: dict[str, Any], *,
                     ttl: int | None = None, log: tuple[str, str, int] | None = None) -> None:
        """Keep the answer as the claim's done mark; with ``log`` (``tool_call_entry``), that
        line appended in the same round trip."""
        key = self._claim_key(kind, ids)
        value = ANSWER_PREFIX + json.dumps(answer, ensure_ascii=False)
        if log is None:
            self.backend.set(key, value, ex=ttl or self.ttl)
        else:
            self.backend.set_many({key: value}, ex=ttl or self.ttl, append=log)
        self._forget_claim(key)

    def get_answer(self, kind: str, ids: tuple[str, ...]) -> dict[str, Any] | None:
        value = self.backend.get(self._claim_key(kind, ids))
        if value and value.startswith(ANSWER_PREFIX):
            return json.loads(value[len(ANSWER_PREFIX):])
        return None

    def wait_for_answer(self, kind: str, ids: tuple[str, ...],
                        deadline: float) -> dict[str, Any] | None:
        """The answer of a claim held elsewhere, polling until it lands or the deadline."""
        while True:
            answer = self.get_answer(kind, ids)
            if answer is not None or time.monotonic() >= deadline:
                return answer
            time.sleep(0.05)

    # Calls started here: which contact and client they are for, for the pipeline.
    def remember_call_contact(self, call_id: str, contact: dict[str, Any]) -> None:
        key = self.key("call-contact", check_id(call_id, "call_id"))
        self.backend.set(key, _json_object(contact), ex=self.ttl)

    def get_call_contact(self, call_id: str) -> dict[str, Any] | None:
        value = self.backend.get(self.key("call-contact", check_id(call_id, "call_id")))
        return json.loads(value) if value else None

    # The caller's CRM contact, found once per call by the tools and kept for the call's
    # length. Under the call and one client (``client`` is a digest): never shared.
    def keep_caller_contact(self, call_id: str, client: str, contact_id: str) -> None:
        self.backend.set(self._caller_key(call_id, client), contact_id, ex=self.ttl)

    def caller_contact(self, call_id: str, client: str) -> str | None:
        return self.backend.get(self._caller_key(call_id, client))

    def forget_caller_contact(self, call_id: str, client: str) -> None:
        self.backend.delete(self._caller_key(call_id, client))

    def _caller_key(self, call_id: str, client: str) -> str:
        return self.key("caller-contact", check_id(call_id, "call_id"), check_id(client, "client"))

    # The opportunity ``update_stage`` found or created, with the stage it left it in: a later
    # ``update_stage`` of the call moves it without searching. ``ids``: (call id, client
    # digest, contact id, pipeline id); the value a JSON pair [opportunity id, stage id].
    def keep_opportunity(self, ids: tuple[str, str, str, str], opportunity_id: str,
                         stage_id: str) -> None:
        self.backend.set(self._opportunity_key(ids), json.dumps([opportunity_id, stage_id]),
                         ex=self.ttl)

    def kept_opportunity(self, ids: tuple[str, str, str, str]) -> tuple[str, str] | None:
        value = self.backend.get(self._opportunity_key(ids))
        pair = json.loads(value) if value else None
        if isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, str) for v in pair):
            return pair[0], pair[1]
        return None

    def forget_opportunity(self, ids: tuple[str, str, str, str]) -> None:
        self.backend.delete(self._opportunity_key(ids))

    def _opportunity_key(self, ids: tuple[str, str, str, str]) -> str:
        names = ("call_id", "client", "contact_id", "pipeline_id")
        return self.key("opportunity", *(check_id(v, n) for v, n in zip(ids, names, strict=True)))

    def _claim_key(self, kind: str, ids: tuple[str, ...]) -> str:
        names = ("call_id", "contact_id")
        return self.key(kind, *(check_id(value, names[min(i, 1)]) for i, value in enumerate(ids)))

    def _forget_claim(self, key: str) -> None:
        with self._claims_lock:
            self._claims.pop(key, None)

    def status(self) -> dict[str, Any]:  # of the store itself, for /health
        """What /health reports, from a real ping."""
        started = time.perf_counter()
        try:
            self.backend.ping()
        except StorageError as exc:
            log.warning("[STATE_STORAGE] Store not answering: %s", exc)
            available, latency_ms = False, None
        else:
            available = True
            latency_ms = round((time.perf_counter() - started) * 1000, 3)
        return {
            "type": self.backend.label,
            "backend": self.backend.name,
            "persistent": self.backend.persistent,
            "available": available,
            "latency_ms": latency_ms,
            "ttl": self.ttl,
            # With an in-process fallback (storage/fallback.py): whether it is serving now.
            "fallback": getattr(self.backend, "fallback_name", None),
            "degraded": getattr(self.backend, "degraded", False),
        }


def _json_object(value: dict[str, Any]) -> str:
    if not isinstance(value, dict):
        raise ValueError("metadata must be a JSON object")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
