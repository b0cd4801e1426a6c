"""The worker's view of the queue: the few operations its loop needs, with the protocol's
answers reduced to what the loop acts on.

``QueueBackend`` is the interface; ``jobqueue.runtime.redis_backend`` implements it over
``jobqueue.protocol``. Keeping the loop on this narrow surface lets it stay readable and
lets the protocol evolve (more jobs per round trip, new scripts) behind one adapter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

__all__ = ["LeaseStatus", "LeasedJob", "QueueBackend", "Report"]


class LeasedJob(NamedTuple):
    """A job this worker holds a lease on (immutable; a NamedTuple because one is made per
    job and a frozen dataclass costs several times as much to build).

    ``record_error`` is set (and ``payload`` is None) when the stored record cannot be
    decoded; the worker then dead-letters the job instead of running it.
    ``token`` is the lease's fencing token: every report carries it, and the queue refuses
    reports whose token is no longer the job's current one.
    """

    queue: str
    job_id: str
    name: str
    token: str
    attempt: int
    max_attempts: int
    payload: Any = None
    record_error: str | None = None
    timeout: float | None = None
    extra: Mapping[str, Any] = MappingProxyType({})

    @property
    def key(self) -> tuple[str, str]:
        return (self.queue, self.job_id)


class LeaseStatus(StrEnum):
    OK = "ok"
    LOST = "lost"  # another worker owns the job now, or it is gone: stop, report nothing
    CANCEL_REQUESTED = "cancel_requested"  # still ours; the user asked it to stop


@dataclass(frozen=True)
class Report:
    """The queue's answer to a completion or failure report."""

    accepted: bool
    reason: str = ""  # why it was refused (e.g. "stale token"), or the job's new state
    next_jobs: Sequence[LeasedJob] = ()  # taken in the same call (complete-and-take-next)


class QueueBackend(Protocol):
    async def take(self, queues: Sequence[str], n: int) -> list[LeasedJob]:
        """Lease up to ``n`` ready jobs, trying ``queues`` in order. Jobs leased by an
        earlier call whose reply was lost come back here too. Raises only when nothing was
        leased (an error on a later queue does not lose the jobs of an earlier one)."""
        ...

    async def wait_for_work(self, queues: Sequence[str], max_wait: float) -> None:
        """Block (on Redis, not polling) until work may be ready or ``max_wait`` s pass."""
        ...

    async def wait_and_take(
        self, queues: Sequence[str], n: int, max_wait: float
    ) -> list[LeasedJob] | None:
        """Wait like ``wait_for_work`` and lease up to ``n`` jobs in the same round trip;
        None if the backend cannot combine them (the caller waits, then takes). Never cancel
        it while it waits (jobs may be leased already): call ``interrupt_wait`` instead."""
        ...

    async def interrupt_wait(self, queues: Sequence[str]) -> None:
        """End a running ``wait_and_take`` now; it still returns the jobs it took."""
        ...

    async def complete(
        self, done: Sequence[tuple[LeasedJob, Any]], take_next: int
    ) -> tuple[list[bool | Exception], list[LeasedJob]]:
        """Record results (one script call per queue) and lease up to ``take_next`` more jobs
        in the same call. Returns per job: accepted (True), refused (False: stale token) or
        the error of its queue's call (the other queues' results stand), and the newly
        leased jobs. Sending a completion again after an error is safe."""
        ...

    async def fail(self, job: LeasedJob, error: str, *, retryable: bool) -> Report: ...

    async def defer(self, job: LeasedJob, reason: str) -> Report:
        """Hand a job back for another worker (this one cannot serve it); not a failure."""
        ...

    async def still_waiting(self, jobs: Sequence[LeasedJob]) -> set[tuple[str, str]]:
        """Keys of those ``jobs`` that wait in their queue (queued or delayed)."""
        ...

    def result_limit(self, queue: str) -> int:
        """The largest result (bytes of JSON) the queue accepts."""
        ...

    async def fire_schedules(self) -> float:
        """Submit the jobs of the queues' schedules whose tick has come (each tick once,
        however many fire it); returns the seconds until the next tick (inf for none)."""
        ...

    async def startup_problem(self) -> str | None:
        """Why this worker must not start (e.g. Redis may evict job records), or None."""
        ...

    async def ack_cancelled(self, job: LeasedJob, reason: str) -> Report: ...

    async def progress(
        self, job: LeasedJob, percent: float, message: str | None
    ) -> LeaseStatus: ...

    async def renew(self, jobs: Sequence[LeasedJob]) -> dict[tuple[str, str], LeaseStatus]: ...

    def cancel_requests(self, queues: Sequence[str]) -> AsyncIterator[tuple[str, str]]:
        """Keys (queue, job id) of active jobs whose cancellation was just requested, as they
        come (a hint to renew those leases now; may miss some while disconnected)."""
        ...

    async def release(self, jobs: Sequence[LeasedJob]) -> None:
        """Hand jobs back to their queues at once (shutdown), without waiting for lease expiry."""
        ...

    async def register(self) -> None: ...

    async def heartbeat(self, jobs_in_hand: int) -> None:
        """Refresh the worker's registry entry (and learn the queues' current settings)."""
        ...

    async def unregister(self) -> None: ...

    async def close(self) -> None: ...
