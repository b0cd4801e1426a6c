"""``QueueBackend`` over ``jobqueue.protocol``: one ``QueueProtocol`` per queue served.

Queues are tried in the order given (the first has precedence). A completion takes the next
job in the same script call only for the first queue, so that order is kept under load.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from typing import Any

from jobqueue.models import WorkerInfo, parse_backoff
from jobqueue.protocol import (
    AnyRedis,
    LeaseStatus,
    QueueProtocol,
    cancel_requests,
    wait_for_any,
    wait_then_take,
    wake_worker,
)
from jobqueue.protocol import LeasedJob as ProtocolJob
from jobqueue.runtime.backend import LeasedJob, Report
from jobqueue.runtime.backend import LeaseStatus as Lease
from jobqueue.runtime.settings import WorkerSettings

__all__ = ["RedisBackend", "new_worker_id"]

# Workers missing this many lease periods of heartbeats drop out of the registry.
_STALE_AFTER_LEASES = 3.0


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
        self._first_queue = settings.queues[0]
        self._started_at = time.time()
        self._host = socket.gethostname()

    def protocol(self, queue: str) -> QueueProtocol:
        return self._protocols[queue]

    async def take(self, queues: Sequence[str], n: int) -> list[LeasedJob]:
        taken: list[LeasedJob] = []
        for queue in queues:
            want = n - len(taken)
            if want <= 0:
                break
            jobs = await self._protocols[queue].take(self.worker_id, want, self.lease_seconds)
            taken.extend(_to_runtime(job) for job in jobs)
        return taken

    async def wait_for_work(self, queues: Sequence[str], max_wait: float) -> None:
        await wait_for_any([self._protocols[q] for q in queues], max_wait)

    async def wait_and_take(
        self, queues: Sequence[str], n: int, max_wait: float
    ) -> list[LeasedJob] | None:
        protocols = [self._protocols[q] for q in queues]
        jobs = await wait_then_take(protocols, self.worker_id, n, self.lease_seconds, max_wait)
        return None if jobs is None else [_to_runtime(job) for job in jobs]

    async def interrupt_wait(self, queues: Sequence[str]) -> None:
        await wake_worker([self._protocols[q] for q in queues], self.worker_id)

    async def complete(
        self, done: Sequence[tuple[LeasedJob, Any]], take_next: int
    ) -> tuple[list[bool], list[LeasedJob]]:
        by_queue: dict[str, list[int]] = defaultdict(list)
        for index, (job, _) in enumerate(done):
            by_queue[job.queue].append(index)
        if take_next and self._first_queue not in by_queue:
            by_queue[self._first_queue] = []
        queues = list(by_queue)
        calls = [
            self._protocols[q].complete(
                self.worker_id,
                [(done[i][0].job_id, int(done[i][0].token), done[i][1]) for i in by_queue[q]],
                take_next=take_next if q == self._first_queue else 0,
                lease_seconds=self.lease_seconds,
            )
            for q in queues
        ]
        # One queue (the usual case): no gather, which would wrap the call in a new Task.
        answers = [await calls[0]] if len(calls) == 1 else await asyncio.gather(*calls)
        accepted = [False] * len(done)
        next_jobs: list[LeasedJob] = []
        for queue, answer in zip(queues, answers, strict=True):
            for index, status in zip(by_queue[queue], answer.statuses, strict=True):
                accepted[index] = status is not LeaseStatus.STALE
            next_jobs.extend(_to_runtime(j) for j in answer.next_jobs)
        return accepted, next_jobs

    async def fail(self, job: LeasedJob, error: str, *, retryable: bool) -> Report:
        delay: float | None = None
        if retryable:
            backoff = str(job.extra.get("backoff") or "")
            delay = parse_backoff(backoff).delay(job.attempt) if backoff else 0.0
        answer = await self._protocols[job.queue].fail(
            job.job_id, int(job.token), error, retry_delay=delay
        )
        if answer.status is LeaseStatus.STALE:
            return Report(False, "stale fencing token: the lease was lost")
        return Report(True, reason=str(answer.state.value if answer.state else ""))

    async def ack_cancelled(self, job: LeasedJob, reason: str) -> Report:
        status = await self._protocols[job.queue].cancelled(job.job_id, int(job.token), reason)
        if status is LeaseStatus.STALE:
            return Report(False, "stale fencing token: the lease was lost")
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
        await asyncio.gather(*(p.heartbeat(info, stale_after) for p in self._protocols.values()))

    async def unregister(self) -> None:
        await asyncio.gather(*(p.unregister(self.worker_id) for p in self._protocols.values()))

    async def close(self) -> None:
        await self.redis.aclose()
