"""Request and response bodies of the HTTP API (the OpenAPI document is generated from them).

Submit options are ``jobqueue.models.JobSpec`` itself, so the API takes exactly the bounds
the client and ``jobq submit`` take (priority 0-9, attempts 1-1000, delays and timeouts...).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from jobqueue.models import Job, JobSpec, JobState, QueueStats, WorkerInfo
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MAX_BULK_JOBS",
    "MAX_PAGE",
    "BulkSubmitRequest",
    "BulkSubmitResponse",
    "CancelResponse",
    "CleanupRequest",
    "CleanupResponse",
    "Condition",
    "ForeignSample",
    "JobPage",
    "JobQueueDetail",
    "JobQueueView",
    "Overview",
    "QueueDetail",
    "QueueSample",
    "ReplicaSample",
    "RetryAllResponse",
    "RetryResponse",
    "ScaleEvent",
    "SubmitResponse",
    "TimelineEntry",
    "WaitResponse",
    "Whoami",
    "WorkerView",
]

#: Jobs per page of a listing, and per bulk submit (the client pipelines them).
MAX_PAGE = 1000
MAX_BULK_JOBS = 1000
#: Without a state, a listing merges every state's newest jobs: offset + limit is bounded.
MAX_MERGED_DEPTH = 10_000
#: A search looks at most this many of the newest jobs (no scan of a whole queue).
MAX_SEARCH_WINDOW = 5000

FinishedState = Literal["completed", "failed", "cancelled"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class SubmitResponse(_Out):
    id: str
    """The new job's id, or the id of the unfinished job holding the dedup key."""
    queue: str


class BulkSubmitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jobs: Annotated[list[JobSpec], Field(min_length=1, max_length=MAX_BULK_JOBS)]
    """All are validated first: one invalid job refuses the request and nothing is written."""


class BulkSubmitResponse(_Out):
    ids: list[str]
    queue: str


class JobPage(_Out):
    jobs: list[Job]
    state: JobState | None
    limit: int
    offset: int
    total: int | None
    """Jobs in this state (None when listing all states)."""
    next_offset: int | None
    """Offset of the next page, None on the last one."""
    search: str | None = None
    searched: int | None = None
    """With ``search``: how many of the newest jobs were looked at (a bounded window)."""


class TimelineEntry(_Out):
    at: datetime
    event: str
    """created, delayed, queued, active, progress, retrying, requeued, released,
    handed_back, cancel_requested, completed, failed, cancelled, retried."""
    data: str | None = None
    source: Literal["record", "events"]
    """record: a time stored on the job; events: the queue's (bounded) event stream."""


class JobDetail(_Out):
    job: Job
    timeline: list[TimelineEntry]
    timeline_complete: bool
    """False when the event stream no longer holds the job's oldest events (trimmed)."""


class WaitResponse(_Out):
    finished: bool
    """False: ``timeout`` passed first; ``job`` is its state now (ask again)."""
    job: Job


class CancelResponse(_Out):
    id: str
    result: Literal["cancelled", "requested"]
    """cancelled: it was queued or delayed and will never run; requested: it is active and
    its handler is asked to stop."""


class RetryResponse(_Out):
    id: str
    state: JobState


class RetryAllResponse(_Out):
    retried: int
    skipped: int
    """Left in the dead letter: their dedup key is held by an unfinished job, or their
    record is malformed."""


class CleanupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    older_than_seconds: Annotated[float, Field(ge=0, le=5 * 365 * 86400, allow_inf_nan=False)]
    """Delete finished jobs that finished more than this long ago."""
    state: FinishedState | None = None
    """Only this finished state (default: all three)."""


class CleanupResponse(_Out):
    removed: int


class WorkerView(_Out):
    worker: WorkerInfo
    jobs: list[Job]
    """Active jobs this worker holds (from the queue's active jobs, newest first)."""


class QueueSample(_Out):
    """One sample of a queue's statistics, taken by the server every few seconds."""

    at: float
    queued: int
    active: int
    delayed: int
    backlog: int
    oldest_wait_seconds: float
    failure_ratio: float
    completed_1m: int
    failed_1m: int
    workers: int


class Condition(_Out):
    type: str
    status: str
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = None


class ReplicaSample(_Out):
    at: float
    desired: int | None
    current: int | None
    ready: int | None


class ForeignSample(_Out):
    """A foreign queue's figures as its JobQueue's status showed them at one poll (the
    dashboard reads another system's queue only through the operator)."""

    at: float
    backlog: int | None
    oldest_wait_seconds: float | None
    failure_ratio: float | None


class ScaleEvent(_Out):
    at: float
    reason: str
    """ScaledUp or ScaledDown."""
    message: str
    from_replicas: int | None = None
    to_replicas: int | None = None


class JobQueueView(_Out):
    """A JobQueue as its status shows it (read from the Kubernetes API)."""

    namespace: str
    name: str
    queue: str | None
    source: str
    """jobqueue for this project's queues; for a foreign queue the system's kind as
    spec.source.kind names it (BullMQ, Celery, RQ, List, Stream)."""
    foreign: bool = False
    """Another system's queue: shown read-only (its jobs are not listed or changed here);
    what is known of it comes from the JobQueue's status."""
    source_queues: list[str] = []
    """A foreign JobQueue's spec.source.queues (queue names, list or stream keys)."""
    scale_target: str | None = None
    """The workload scaled, as Kind/name (the operator's Deployment or spec.scaleTargetRef)."""
    signals: list[str] | None = None
    """What the operator's last read of the queue observed (a foreign system keeps less than
    this project's queue; the MetricsComplete condition says what that costs)."""
    desired_replicas: int | None
    replicas: int | None
    ready_replicas: int | None
    workers: int | None
    backlog_total: int | None
    oldest_wait_seconds: float | None
    failure_ratio: float | None
    last_scale_time: str | None
    last_scale_reason: str | None
    conditions: list[Condition]


class JobQueueDetail(_Out):
    jobqueue: JobQueueView
    replicas_history: list[ReplicaSample]
    """Samples since this server started (kept ``history_seconds``)."""
    scale_events: list[ScaleEvent]
    """ScaledUp/ScaledDown events the operator posted (as long as Kubernetes keeps them)."""


class QueueDetail(_Out):
    stats: QueueStats
    history: list[QueueSample]
    jobqueues: list[JobQueueView]
    """The JobQueues that serve this queue."""


class Overview(_Out):
    """What the dashboard shows on its first screen (also sent as live updates)."""

    at: float
    queues: list[QueueStats]
    history: dict[str, list[QueueSample]]
    jobqueues: list[JobQueueView]
    foreign_history: dict[str, list[ForeignSample]] = {}
    """Per foreign JobQueue (namespace/name): its backlog, oldest wait and failure ratio
    over time, as its status showed them (for the sparklines)."""
    kubernetes: Literal["off", "ok", "error"]
    kubernetes_error: str | None = None
    redis_error: str | None = None
    """Why the last sample of the queues failed (None when it worked)."""


class Whoami(_Out):
    label: str
    role: Literal["read", "write"]


class Health(_Out):
    status: Literal["ok"]


def page_of(
    jobs: list[Job],
    *,
    state: JobState | None,
    limit: int,
    offset: int,
    total: int | None,
    more: bool,
    **extra: Any,
) -> JobPage:
    return JobPage(
        jobs=jobs,
        state=state,
        limit=limit,
        offset=offset,
        total=total,
        next_offset=offset + limit if more else None,
        **extra,
    )
