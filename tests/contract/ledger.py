"""What the contract checks saw: violations (until a test takes them) and session-wide counts.

The fakes answer on their own server threads, so everything here is behind one lock.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import NamedTuple


class Violation(NamedTuple):
    operation: str  # "POST /contacts/upsert" (the spec's template), "Slack chat.postMessage"
    field: str  # "header.Version", "body.customFields[].id", "answer 200 body.x", "*"
    message: str

    def __str__(self) -> str:
        return f"{self.operation} {self.field}: {self.message}"

_lock = threading.Lock()
_violations: list[Violation] = []
requests: Counter[str] = Counter()  # GoHighLevel operation ("POST /contacts/upsert") -> requests
answers: Counter[str] = Counter()  # GoHighLevel operation -> answers validated against a schema
exempted: Counter[str] = Counter()  # "operation field" -> times an exception applied
slack_payloads = Counter[str]()  # "chat.postMessage" / "incoming webhook" -> payloads checked


def violation(operation: str, field: str, message: str) -> None:
    with _lock:
        _violations.append(Violation(operation, field, message))


def count(counter: Counter[str], key: str) -> None:
    with _lock:
        counter[key] += 1


def take_violations() -> list[Violation]:
    """The violations recorded since the last call (and forget them)."""
    with _lock:
        taken = list(_violations)
        _violations.clear()
    return taken
