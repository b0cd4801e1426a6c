"""The interface every queue adapter implements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from jobqueue_operator.scaling import ALL_SIGNALS, QueueMetrics, Signal

if TYPE_CHECKING:
    from jobqueue.models import QueueSettings
    from jobqueue.protocol.scheduling import ScheduleState
    from jobqueue.schedules import Schedule


class SourceUnavailable(Exception):
    """The queue could not be read (connection refused, timeout, bad credentials, ...)."""


class CredentialsRejected(SourceUnavailable):
    """The server refused the credentials (they may have been rotated: read them again)."""


@dataclass(frozen=True)
class WorkerLoad:
    """How many jobs one worker holds (name = the pod name under Kubernetes)."""

    name: str
    jobs_in_hand: int


@dataclass(frozen=True)
class Observation:
    """One read of a queue: the decision inputs plus who holds which jobs."""

    metrics: QueueMetrics
    workers: tuple[WorkerLoad, ...]
    taken_at: float
    # Why the queue's Redis may lose job records (it evicts keys), when it may.
    redis_problem: str | None = None
    # Leases that lapsed in the last 5 minutes, where the queue system counts them.
    lease_lapses_5m: int = 0
    # A schedule's tick has come (where the queue system has schedules).
    schedule_due: bool = False
    # Schedules stored with the queue, where the read counts them (None: not known).
    schedules: int | None = None
    # What this read could see (a foreign queue system keeps less than ours); the decision
    # switches off the rules whose inputs are missing (scaling/signals.py).
    observed: frozenset[Signal] = ALL_SIGNALS
    # Live workers where the system counts them without saying who holds what (BullMQ's
    # named connections); None: as many as ``workers``.
    worker_count: int | None = None
    # Why a signal the source can read was not read this time (a refused CLIENT LIST, ...).
    notes: tuple[str, ...] = ()

    @property
    def live_workers(self) -> int | None:
        """Live workers, None when the source cannot count them."""
        if self.worker_count is not None:
            return self.worker_count
        return len(self.workers) if Signal.WORKERS in self.observed else None


class QueueSource(Protocol):
    """Reads one queue. ``read`` raises SourceUnavailable when the queue can't be read.

    ``signals`` are what the adapter can observe at best (a read may see less: see
    Observation.observed). Adapters of foreign queue systems only read: a key of another
    system changed by an adapter is a bug (tests/operator/test_foreign_readonly.py)."""

    signals: frozenset[Signal]

    async def read(self) -> Observation: ...

    async def close(self) -> None: ...


@runtime_checkable
class ConfiguresQueue(Protocol):
    """Optional capability of a source: the queue keeps settings the JobQueue may set
    (ours: ``spec.queueSettings``, stored with the queue in Redis)."""

    async def configure(self, settings: QueueSettings) -> None: ...


@runtime_checkable
class RunsSchedules(Protocol):
    """Optional capability of a source: the queue keeps schedules (ours: stored with the
    queue in Redis), which the loop keeps in line with ``spec.schedules`` and fires when
    due, so a queue at zero replicas gets its scheduled jobs (and then its workers)."""

    async def sync_schedules(self, wanted: list[Schedule]) -> None: ...

    async def fire_schedules(self) -> None: ...

    async def schedule_states(self) -> list[ScheduleState]: ...


@runtime_checkable
class AnnouncesWork(Protocol):
    """Optional capability of a source: the queue system announces work appearing on an
    idle queue, so its loop can poll at once instead of at its next interval. Sources
    without it are simply polled."""

    def on_work(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (in the event loop; it must not block) whenever work appears on
        the idle queue, until the source is closed."""

    @property
    def announcing(self) -> bool:
        """True while an announcement would reach ``callback`` (the subscription is up)."""
