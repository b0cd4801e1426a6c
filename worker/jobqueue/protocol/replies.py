"""What the protocol's scripts answer, decoded: leased jobs, report statuses, statistics.

Decoding is per job: a job whose fields cannot be decoded is returned with ``record_error``
set (the worker sends it to the dead letter), never an exception for the whole batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from jobqueue.models import JobState

__all__ = [
    "CancelResult",
    "CompleteResult",
    "FailResult",
    "LeaseStatus",
    "LeasedJob",
    "RetryAllResult",
    "StatsSnapshot",
    "decode_leased",
    "decode_snapshot",
    "event_job_ids",
]

TAKE_FIELDS = 9


def event_job_ids(fields: dict[str, str]) -> list[str]:
    """The jobs an event-stream entry is about: one (``job``), or the jobs of one script
    call (``jobs``: ids joined by newlines), written as one entry to save an XADD per job."""
    if "job" in fields:
        return [fields["job"]]
    return fields["jobs"].split("\n") if fields.get("jobs") else []


class LeaseStatus(StrEnum):
    OK = "ok"
    CANCEL = "cancel"  # lease still held, but cancellation was requested
    STALE = "stale"  # the caller lost the lease: the report was refused


class CancelResult(StrEnum):
    CANCELLED = "cancelled"  # was queued or delayed: it will never run
    REQUESTED = "requested"  # is active: the worker is told at once (see cancel_requests)
    ALREADY_FINISHED = "already_finished"


class LeasedJob(NamedTuple):
    """A job leased to a worker by ``take``; report its end with ``token``. (Immutable; a
    NamedTuple because one is made per job and a frozen dataclass costs far more to build.)"""

    id: str
    queue: str
    token: int
    attempt: int  # 1-based number of this try
    name: str
    payload: Any
    max_attempts: int
    timeout: float | None
    backoff: str
    priority: int
    # Set (and payload None) when the stored record cannot be used as it is (a payload that
    # is not JSON): the worker fails the job without retrying rather than lose its batch.
    record_error: str | None = None


@dataclass(frozen=True, slots=True)
class CompleteResult:
    statuses: list[LeaseStatus]  # one per completed job, in order
    next_jobs: list[LeasedJob]  # jobs leased in the same call (take_next)


@dataclass(frozen=True, slots=True)
class FailResult:
    status: LeaseStatus
    state: JobState | None  # new state: queued/delayed (retry), failed, cancelled; None if stale


@dataclass(frozen=True, slots=True)
class RetryAllResult:
    retried: int
    skipped: int  # left in the dead letter: dedup key held again, or a malformed record


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """Raw numbers of stats.lua; ``jobqueue.stats`` turns them into ``QueueStats``."""

    now_ms: int
    queued: int
    active: int
    delayed: int
    delayed_due: int
    completed: int
    failed: int
    cancelled: int
    oldest_ready_ms: int | None
    window_succeeded: int
    window_failed: int
    succeeded_1m: int
    failed_1m: int
    succeeded_5m: int
    failed_5m: int
    lapsed_1m: int
    lapsed_5m: int
    schedules: int
    next_schedule_due_ms: int | None
    workers: list[str]  # WorkerInfo JSON


_SNAPSHOT_NUMBERS = 19


def decode_snapshot(raw: list[Any]) -> StatsSnapshot:
    nums = [int(x) for x in raw[:_SNAPSHOT_NUMBERS]]
    return StatsSnapshot(
        now_ms=nums[0],
        queued=nums[1],
        active=nums[2],
        delayed=nums[3],
        delayed_due=nums[4],
        completed=nums[5],
        failed=nums[6],
        cancelled=nums[7],
        oldest_ready_ms=None if nums[8] < 0 else nums[8],
        window_succeeded=nums[9],
        window_failed=nums[10],
        succeeded_1m=nums[11],
        failed_1m=nums[12],
        succeeded_5m=nums[13],
        failed_5m=nums[14],
        lapsed_1m=nums[15],
        lapsed_5m=nums[16],
        schedules=nums[17],
        next_schedule_due_ms=None if nums[18] < 0 else nums[18],
        workers=list(raw[_SNAPSHOT_NUMBERS:]),
    )


def decode_leased(queue: str, encoded: str) -> list[LeasedJob]:
    """The jobs of a take reply (one JSON array of 9 fields per job)."""
    raw = json.loads(encoded)
    return [_leased_job(queue, raw[i : i + TAKE_FIELDS]) for i in range(0, len(raw), TAKE_FIELDS)]


def _leased_job(queue: str, fields: list[Any]) -> LeasedJob:
    jid, token, attempt, name, payload, max_attempts, timeout, backoff, prio = fields
    try:
        numbers = (int(token), int(attempt), int(max_attempts), int(prio))
        seconds = float(timeout) if timeout else None
    except (TypeError, ValueError) as exc:  # the scripts check these; never lose the batch
        problem = f"stored record cannot be decoded: {exc}"
        return LeasedJob(
            jid, queue, _int(token), _int(attempt), str(name), None, _int(max_attempts), None,
            str(backoff), 5, problem,
        )  # fmt: skip
    decoded: Any = None
    record_error = None
    try:
        decoded = json.loads(payload) if payload else None
    except ValueError as exc:
        record_error = f"stored payload is not valid JSON: {exc}"
    return LeasedJob(  # positional: the field order of LeasedJob (keywords cost more)
        jid,
        queue,
        numbers[0],
        numbers[1],
        name,
        decoded,
        numbers[2],
        seconds,
        backoff,
        numbers[3],
        record_error,
    )


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
