"""Deliveries that could not be made now: parked in the store, retried later, never dropped.

A job is one step (``note``, ``tags``, ``slack``, ``recording``) of one ended call. Keys:
``<prefix>:outbox:due`` (sorted set of ``<callId>:<step>`` by due time),
``<prefix>:outbox:dead`` (the same, by time of death) and
``<prefix>:outbox:job:<callId>:<step>`` (the job as JSON, with the report to deliver).
A drainer leases a job's call with a claim, so two drainers never run it at once; the
step's own claim (``note:<callId>:<contactId>``...) keeps a retry from repeating a
delivery that did land.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .storage import StateStore

log = logging.getLogger(__name__)

STEPS = ("note", "tags", "slack", "fields", "stage", "recording")
JOB_TTL = 8 * 86400  # longer than the whole backoff schedule, plus a week to look at the dead
LEASE_SECONDS = 300  # a drainer's hold on a job; a crashed drainer's job is free after it
BACKOFF_FACTOR = 3  # 60 s, 3 min, 9 min, 27 min, 81 min, 4 h, 12 h: about a day in 8 attempts
JITTER = 0.2  # +-20%, so a burst parked together does not come due together


@dataclass(frozen=True)
class Job:
    call_id: str
    step: str
    client: str
    report: dict[str, Any] = field(repr=False)  # CallReport.to_dict()
    contact_id: str | None = None
    attempts: int = 0
    due_at: float = 0.0
    last_error: str | None = None
    parked_at: float = 0.0
    dead_at: float | None = None

    @property
    def member(self) -> str:
        return f"{self.call_id}:{self.step}"

    def summary(self) -> dict[str, Any]:
        """What ``outbox --json`` and the status page show (no report body)."""
        data = asdict(self)
        data.pop("report")
        return data


@dataclass
class DrainSummary:
    delivered: int = 0
    parked: int = 0  # failed again, due later
    dead: int = 0
    busy: int = 0  # held, or done since this pass listed it, by another drainer
    vanished: int = 0  # its job data had expired

    @property
    def seen(self) -> int:
        return self.delivered + self.parked + self.dead + self.busy + self.vanished

    def __str__(self) -> str:
        return ", ".join(f"{name}={value}" for name, value in asdict(self).items())


class Outbox:
    def __init__(self, state: StateStore, *, max_attempts: int = 8, base_delay: float = 60.0,
                 clock: Callable[[], float] = time.time):
        self.state = state
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.clock = clock
        self.due_key = state.key("outbox", "due")
        self.dead_key = state.key("outbox", "dead")

    def park(self, job: Job, error: str | None, *, retryable: bool) -> Job:
        """Record a failed attempt: due again after a backoff, or dead. Returns the job."""
        now = self.clock()
        job = replace(job, attempts=job.attempts + 1, last_error=(error or "")[:300] or None,
                      parked_at=job.parked_at or now)
        if not retryable or job.attempts >= self.max_attempts:
            return self._bury(job, now)
        job = replace(job, due_at=now + self.delay(job.attempts))
        self._save(job)
        self.state.backend.zadd(self.due_key, job.member, job.due_at)
        log.warning("[OUTBOX] Parked callId=%s step=%s attempt=%d due_in=%ds: %s", job.call_id,
                    job.step, job.attempts, job.due_at - now, job.last_error)
        return job

    def park_new(self, job: Job, error: str | None, *, retryable: bool) -> Job:
        """Park a step that just failed in the pipeline. A report Vapi sent again while its
        step was parked keeps counting that job's attempts, not starting over."""
        existing = self.state.backend.get(self._job_key(job.member))
        if existing:
            earlier = _job(existing)
            job = replace(job, attempts=earlier.attempts, parked_at=earlier.parked_at)
        return self.park(job, error, retryable=retryable)

    def delay(self, attempts: int) -> float:
        """Seconds before the next try, after ``attempts`` tries: exponential, jittered."""
        base = self.base_delay * BACKOFF_FACTOR ** (attempts - 1)
        return base * random.uniform(1 - JITTER, 1 + JITTER)

    def complete(self, job: Job) -> None:
        self.state.backend.zrem(self.due_key, job.member)
        self.state.backend.zrem(self.dead_key, job.member)
        self.state.backend.delete(self._job_key(job.member))
        log.info("[OUTBOX] Delivered callId=%s step=%s attempt=%d", job.call_id, job.step,
                 job.attempts + 1)

    def revive(self, job: Job) -> Job:
        """Give a dead job another full round of attempts, due now."""
        job = replace(job, attempts=0, dead_at=None, due_at=self.clock())
        self._save(job)
        self.state.backend.zadd(self.due_key, job.member, job.due_at)
        self.state.backend.zrem(self.dead_key, job.member)
        return job

    def jobs(self, *, dead: bool = False, due_only: bool = False,
             limit: int | None = None) -> list[Job]:
        """Parked (or dead) jobs, soonest (or oldest dead) first."""
        key = self.dead_key if dead else self.due_key
        members = [member for member, _ in self.state.backend.zrange_by_score(
            key, max_score=self.clock() if due_only else None, limit=limit)]
        values = self.state.backend.get_many([self._job_key(m) for m in members])
        return [_job(value) for value in values if value]

    def sizes(self) -> dict[str, int]:
        """Parked and dead jobs, in one round trip."""
        parked, dead = self.state.backend.zcard_many([self.due_key, self.dead_key])
        return {"parked": parked, "dead": dead}

    def jobs_of(self, call_id: str) -> list[Job]:
        """The call's parked and dead jobs, in step order: one MGET."""
        values = self.state.backend.get_many([self._job_key(f"{call_id}:{step}")
                                              for step in STEPS])
        return [_job(value) for value in values if value]

    def counts(self) -> dict[str, int]:
        due = self.state.backend.zrange_by_score(self.due_key, max_score=self.clock())
        return {**self.sizes(), "due": len(due)}

    @contextmanager
    def lease(self, member: str) -> Iterator[Job | None]:
        """Hold ``member`` for one try: its job, or None if another drainer has it.

        The lease is per call, not per step: one drainer at a time works on a call, so
        two steps' results never race to rewrite the call's delivery record.
        """
        call_id = member.rpartition(":")[0]
        if not self.state.claim("outbox-lease", call_id, ttl=LEASE_SECONDS):
            yield None
            return
        try:
            value = self.state.backend.get(self._job_key(member))
            yield _job(value) if value else _vanished(member)
        finally:
            self.state.release("outbox-lease", call_id)

    def forget(self, member: str) -> bool:
        """Drop an index entry whose job data expired; whether there was one."""
        listed = self.state.backend.zrem(self.due_key, member)
        return self.state.backend.zrem(self.dead_key, member) or listed

    def _bury(self, job: Job, now: float) -> Job:
        job = replace(job, dead_at=now, due_at=0.0)
        self._save(job)
        self.state.backend.zadd(self.dead_key, job.member, now)
        self.state.backend.zrem(self.due_key, job.member)
        log.error("[OUTBOX] Dead letter callId=%s step=%s attempts=%d: %s", job.call_id,
                  job.step, job.attempts, job.last_error)
        return job

    def _save(self, job: Job) -> None:
        self.state.backend.set(self._job_key(job.member), json.dumps(asdict(job)), ex=JOB_TTL)

    def _job_key(self, member: str) -> str:
        return self.state.key("outbox", "job", member)


def _job(value: str) -> Job:
    return Job(**json.loads(value))


def _vanished(member: str) -> Job:
    call_id, _, step = member.rpartition(":")
    return Job(call_id=call_id, step=step, client="", report={})


def drain(outbox: Outbox, deliver: Callable[[Job], tuple[bool, str | None, bool]], *,
          include_future: bool = False, dead: bool = False, limit: int = 1000,
          progress: Callable[[Job, str], None] | None = None,
          deadline: float | None = None) -> DrainSummary:
    """One pass over what is due (everything with ``include_future``; the dead with ``dead``).

    ``deliver(job)`` returns (delivered, error, retryable). No job is started after
    ``deadline`` (a ``time.monotonic()`` value); the rest stay due for the next pass.
    """
    summary = DrainSummary()
    if dead:
        for job in outbox.jobs(dead=True, limit=limit):
            outbox.revive(job)
    pending = outbox.state.backend.zrange_by_score(
        outbox.due_key, max_score=None if include_future else outbox.clock(), limit=limit)
    for member, score in pending:
        if deadline is not None and time.monotonic() >= deadline:
            break
        _tally(summary, _try(outbox, member, score, deliver), progress)
    if summary.seen:
        log.info("[OUTBOX] Drained %s", summary)
    return summary


def drain_call(outbox: Outbox, call_id: str,
               deliver: Callable[[Job], tuple[bool, str | None, bool]], *,
               progress: Callable[[Job, str], None] | None = None) -> DrainSummary:
    """Try every parked or dead step of one call now, as ``drain`` would (a dead one gets a
    new round of attempts first); the lease and the steps' claims make a click safe."""
    summary = DrainSummary()
    for job in outbox.jobs_of(call_id):
        if job.dead_at:
            job = outbox.revive(job)
        _tally(summary, _try(outbox, job.member, job.due_at, deliver), progress)
    log.info("[OUTBOX] Delivered again callId=%s: %s", call_id, summary)
    return summary


def _tally(summary: DrainSummary, outcome: tuple[str, Job | None],
           progress: Callable[[Job, str], None] | None) -> None:
    setattr(summary, outcome[0], getattr(summary, outcome[0]) + 1)
    if progress and outcome[1]:
        progress(outcome[1], outcome[0])


def _try(outbox: Outbox, member: str, listed_due: float, deliver) -> tuple[str, Job | None]:
    with outbox.lease(member) as job:
        if job is None:
            return "busy", None
        if not job.client:  # expired, or delivered by another drainer since we listed it
            return ("vanished" if outbox.forget(member) else "busy"), None
        if job.due_at != listed_due:  # another drainer tried it since we listed it
            return "busy", None
        delivered, error, retryable = deliver(job)
        if delivered:
            outbox.complete(job)
            return "delivered", job
        job = outbox.park(job, error, retryable=retryable)
        return ("dead" if job.dead_at else "parked"), job
