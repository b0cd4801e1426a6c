"""``QueueBackend`` over ``jobqueue.protocol``: one ``QueueProtocol`` per queue served.

Queues are tried in the order given (the first has precedence). A completion takes the next
job in the same script call only for the first queue, so that order is kept under load.

Lost replies: every call that leases jobs carries a request id, and the script journals what
it leased under it for as long as the leases last. A call that raised (a socket timeout, a
connection reset, a wait cut short) may still have leased jobs in Redis; its request id is
kept, and the next ``take`` recovers them first, so they run now instead of lapsing.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import math
import os
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from jobqueue.eviction import eviction_policy, eviction_problem
from jobqueue.models import DEFAULT_BACKOFF, QueueSettings, WorkerInfo, parse_backoff
from jobqueue.protocol import (
    AnyRedis,
    FailResult,
    LeaseStatus,
    QueueProtocol,
    cancel_requests,
    wait_for_any,
    wait_then_take,
    wake_worker,
)
from jobqueue.protocol import LeasedJob as ProtocolJob
from jobqueue.protocol.scheduling import fire_due
from jobqueue.runtime.backend import LeasedJob, Report
from jobqueue.runtime.backend import LeaseStatus as Lease
from jobqueue.runtime.settings import WorkerSettings
from jobqueue.schedules import seconds_until

__all__ = ["RedisBackend", "new_worker_id"]

log = logging.getLogger("jobqueue.worker")
T = TypeVar("T")

# Workers missing this many lease periods of heartbeats drop out of the registry.
_STALE_AFTER_LEASES = 3.0
_STALE = "stale fencing token: the lease was lost"


def new_worker_id(name: str) -> str:
    """Unique per process, readable in logs: ``<name>-<pid>-<random>``."""
    return f"{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _to_runtime(job: ProtocolJob) -> LeasedJob:
    return LeasedJob(  # positional: the field order of LeasedJob (keywords cost more)
        job.queue,
        job.id,
        job.name,
        str(job.token),
        job.attempt,
        job.max_attempts,
        job.payload,
        job.record_error,
        job.timeout,
        {"backoff": job.backoff, "priority": job.priority},
    )


_LEASE_STATUS = {LeaseStatus.OK: Lease.OK, LeaseStatus.CANCEL: Lease.CANCEL_REQUESTED}


def _lease(job: LeasedJob) -> tuple[str, int]:
    return (job.job_id, int(job.token))


def _retry_delay(job: LeasedJob) -> float:
    """The job's backoff for this attempt; a stored backoff this version cannot parse falls
    back to the default rather than failing the report."""
    text = str(job.extra.get("backoff") or DEFAULT_BACKOFF)
    try:
        backoff = parse_backoff(text)
    except ValueError:
        log.warning("job %s has an unusable backoff %r; using %s", job.job_id, text,
                    DEFAULT_BACKOFF)  # fmt: skip
        backoff = parse_backoff(DEFAULT_BACKOFF)
    return backoff.delay(job.attempt)


def _report(answer: FailResult) -> Report:
    if answer.status is LeaseStatus.STALE:
        return Report(False, _STALE)
    return Report(True, reason=str(answer.state.value if answer.state else ""))


class RedisBackend:
    """The worker's queue operations on one Redis (or Redis Cluster) client."""

    def __init__(
        self, redis: AnyRedis, settings: WorkerSettings, *, worker_id: str | None = None
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.worker_id = worker_id or new_worker_id(settings.worker_name)
        self.lease_seconds = settings.lease_seconds
        self._protocols = {q: QueueProtocol(redis, q) for q in settings.queues}
        self.queue_settings = {q: QueueSettings() for q in settings.queues}
        self._first_queue = settings.queues[0]
        self._started_at = time.time()
        self._host = socket.gethostname()
        # (queue, request id, when) of lease calls whose reply was lost
        self._unconfirmed: list[tuple[str, str, float]] = []
        self._requests = itertools.count()

    def protocol(self, queue: str) -> QueueProtocol:
        return self._protocols[queue]

    # --- leasing, with recovery of lost replies -------------------------------------------

    async def _leasing(self, queue: str, call: Callable[[str], Awaitable[T]]) -> T:
        """Run a call that leases jobs under a fresh request id; if it fails or is cancelled
        after it may have reached Redis, remember the id for recovery."""
        request_id = f"{self.worker_id}:{next(self._requests)}"  # unique: the worker id is
        try:
            return await call(request_id)
        except BaseException:
            self._unconfirmed.append((queue, request_id, time.monotonic()))
            raise

    async def _recover(self, n: int) -> list[LeasedJob]:
        """Jobs leased by calls whose replies were lost (at most ``n`` are asked back; the
        journal of a call outlives no lease, so older ones are dropped)."""
        recovered: list[LeasedJob] = []
        keep: list[tuple[str, str, float]] = []
        horizon = time.monotonic() - self.lease_seconds
        for queue, request_id, when in self._unconfirmed:
            if when < horizon:
                continue
            if len(recovered) >= n:
                keep.append((queue, request_id, when))
                continue
            try:
                jobs = await self._protocols[queue].recover(
                    self.worker_id, request_id, self.lease_seconds
                )
            except Exception:
                keep.append((queue, request_id, when))
                continue
            if jobs:
                log.warning("recovered %d job(s) leased by a call whose reply was lost", len(jobs))
            recovered.extend(_to_runtime(job) for job in jobs)
        self._unconfirmed = keep
        return recovered

    async def take(self, queues: Sequence[str], n: int) -> list[LeasedJob]:
        taken = await self._recover(n) if self._unconfirmed else []
        for queue in queues:
            want = n - len(taken)
            if want <= 0:
                break
            take_here = functools.partial(self._take_from, self._protocols[queue], want)
            try:
                jobs = await self._leasing(queue, take_here)
            except Exception as exc:
                if not taken:
                    raise
                log.error("taking jobs from queue %s failed: %s", queue, exc)
                break
            taken.extend(_to_runtime(job) for job in jobs)
        return taken

    async def _take_from(self, proto: QueueProtocol, n: int, request_id: str) -> list[ProtocolJob]:
        return await proto.take(self.worker_id, n, self.lease_seconds, request_id=request_id)

    async def wait_for_work(self, queues: Sequence[str], max_wait: float) -> None:
        await wait_for_any([self._protocols[q] for q in queues], max_wait)

    async def wait_and_take(
        self, queues: Sequence[str], n: int, max_wait: float
    ) -> list[LeasedJob] | None:
        protocols = [self._protocols[q] for q in queues]

        async def call(request_id: str) -> list[ProtocolJob] | None:
            return await wait_then_take(
                protocols, self.worker_id, n, self.lease_seconds, max_wait, request_id=request_id
            )

        jobs = await self._leasing(queues[0], call)
        return None if jobs is None else [_to_runtime(job) for job in jobs]

    async def interrupt_wait(self, queues: Sequence[str]) -> None:
        await wake_worker([self._protocols[q] for q in queues], self.worker_id)

    # --- reports ----------------------------------------------------------------------------

    async def complete(
        self, done: Sequence[tuple[LeasedJob, Any]], take_next: int
    ) -> tuple[list[bool | Exception], list[LeasedJob]]:
        by_queue: dict[str, list[int]] = defaultdict(list)
        for index, (job, _) in enumerate(done):
            by_queue[job.queue].append(index)
        if take_next and self._first_queue not in by_queue:
            by_queue[self._first_queue] = []
        queues = list(by_queue)

        def call(q: str) -> Awaitable[Any]:
            triples = [(done[i][0].job_id, int(done[i][0].token), done[i][1]) for i in by_queue[q]]
            proto = self._protocols[q]
            n = take_next if q == self._first_queue else 0
            return self._leasing(
                q,
                lambda req: proto.complete(
                    self.worker_id, triples, take_next=n, lease_seconds=self.lease_seconds,
                    request_id=req,
                ),
            )  # fmt: skip

        # One queue (the usual case): no gather, which would wrap the call in a new Task.
        if len(queues) == 1:
            try:
                answers: list[Any] = [await call(queues[0])]
            except Exception as exc:
                answers = [exc]
        else:
            answers = await asyncio.gather(*(call(q) for q in queues), return_exceptions=True)
        accepted: list[bool | Exception] = [False] * len(done)
        next_jobs: list[LeasedJob] = []
        for queue, answer in zip(queues, answers, strict=True):
            if isinstance(answer, BaseException):
                if not isinstance(answer, Exception):
                    raise answer
                for index in by_queue[queue]:
                    accepted[index] = answer
                continue
            for index, status in zip(by_queue[queue], answer.statuses, strict=True):
                accepted[index] = status is not LeaseStatus.STALE
            next_jobs.extend(_to_runtime(j) for j in answer.next_jobs)
        return accepted, next_jobs

    async def fail(self, job: LeasedJob, error: str, *, retryable: bool) -> Report:
        delay = _retry_delay(job) if retryable else None
        return _report(
            await self._protocols[job.queue].fail(
                job.job_id, int(job.token), error, retry_delay=delay
            )
        )

    async def defer(self, job: LeasedJob, reason: str) -> Report:
        return _report(await self._protocols[job.queue].defer(job.job_id, int(job.token), reason))

    async def ack_cancelled(self, job: LeasedJob, reason: str) -> Report:
        status = await self._protocols[job.queue].cancelled(job.job_id, int(job.token), reason)
        if status is LeaseStatus.STALE:
            return Report(False, _STALE)
        return Report(True)

    async def progress(self, job: LeasedJob, percent: float, message: str | None) -> Lease:
        status = await self._protocols[job.queue].progress(
            job.job_id, int(job.token), percent, message
        )
        return _LEASE_STATUS.get(status, Lease.LOST)

    async def renew(self, jobs: Sequence[LeasedJob]) -> dict[tuple[str, str], Lease]:
        by_queue: dict[str, list[LeasedJob]] = defaultdict(list)
        for job in jobs:
            by_queue[job.queue].append(job)
        queues = list(by_queue)
        answers = await asyncio.gather(
            *(
                self._protocols[q].renew([_lease(j) for j in by_queue[q]], self.lease_seconds)
                for q in queues
            )
        )
        out: dict[tuple[str, str], Lease] = {}
        for queue, statuses in zip(queues, answers, strict=True):
            for job, status in zip(by_queue[queue], statuses, strict=True):
                out[job.key] = _LEASE_STATUS.get(status, Lease.LOST)
        return out

    def cancel_requests(self, queues: Sequence[str]) -> AsyncIterator[tuple[str, str]]:
        return cancel_requests([self._protocols[q] for q in queues])

    async def release(self, jobs: Sequence[LeasedJob]) -> None:
        by_queue: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for job in jobs:
            by_queue[job.queue].append(_lease(job))
        await asyncio.gather(*(self._protocols[q].release(ls) for q, ls in by_queue.items()))

    async def still_waiting(self, jobs: Sequence[LeasedJob]) -> set[tuple[str, str]]:
        waiting: set[tuple[str, str]] = set()
        for job in jobs:
            [state] = await self._protocols[job.queue].states([job.job_id])
            if state in ("queued", "delayed"):
                waiting.add(job.key)
        return waiting

    def result_limit(self, queue: str) -> int:
        return self.queue_settings[queue].max_result_bytes

    # --- the registry -------------------------------------------------------------------

    def _info(self, jobs_in_hand: int) -> WorkerInfo:
        return WorkerInfo(
            id=self.worker_id,
            name=self.settings.worker_name,
            host=self._host,
            pid=os.getpid(),
            queues=list(self.settings.queues),
            concurrency=self.settings.concurrency,
            jobs_in_hand=jobs_in_hand,
            last_heartbeat=time.time(),
            started_at=self._started_at,
        )

    async def register(self) -> None:
        await self.heartbeat(0)

    async def heartbeat(self, jobs_in_hand: int) -> None:
        info = self._info(jobs_in_hand)
        stale_after = _STALE_AFTER_LEASES * self.lease_seconds
        queues = list(self._protocols)
        stored = await asyncio.gather(
            *(self._protocols[q].heartbeat(info, stale_after) for q in queues)
        )
        self.queue_settings.update(zip(queues, stored, strict=True))

    async def unregister(self) -> None:
        await asyncio.gather(*(p.unregister(self.worker_id) for p in self._protocols.values()))

    async def fire_schedules(self) -> float:
        soonest = math.inf
        for proto in self._protocols.values():
            report = await fire_due(proto)
            for name, job_id in report.fired:
                log.info("schedule %s of queue %s submitted job %s", name, proto.queue, job_id)
            soonest = min(soonest, seconds_until(report.next_due_ms, report.now_ms))
        return soonest

    async def startup_problem(self) -> str | None:
        if self.settings.allow_eviction:
            return None
        problem = eviction_problem(await eviction_policy(self.redis))
        if problem is None:
            return None
        return f"{problem} (or start the worker with JOBQUEUE_ALLOW_EVICTION=true)"

    async def close(self) -> None:
        await self.redis.aclose()
