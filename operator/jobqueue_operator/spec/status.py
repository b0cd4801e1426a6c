"""The JobQueue status: conditions, figures, recommendations and schedules."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from jobqueue_operator.spec.base import CamelModel


class ConditionType(StrEnum):
    """Condition types set on a JobQueue."""

    READY = "Ready"
    REDIS_REACHABLE = "RedisReachable"
    FAILURE_RATE_HIGH = "FailureRateHigh"
    SCALING_LIMITED = "ScalingLimited"
    # False when Redis may evict keys (maxmemory-policy not noeviction): job records could
    # vanish under memory pressure.
    REDIS_NO_EVICTION = "RedisNoEviction"
    # False when the queue system keeps less than the decision can use (a foreign one): the
    # message says which rules are off and what that costs.
    METRICS_COMPLETE = "MetricsComplete"


class Condition(CamelModel):
    """A condition in the metav1.Condition shape."""

    type: str
    """Condition type: Ready, RedisReachable, FailureRateHigh or ScalingLimited."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    observed_generation: int | None = None
    """metadata.generation the condition was set for."""
    last_transition_time: str
    """When the status last changed (RFC 3339)."""
    reason: str
    """CamelCase reason."""
    message: str = ""
    """Human readable detail."""


class Backlog(CamelModel):
    """Jobs in the queue by state."""

    queued: int = 0
    """Jobs waiting to run."""
    active: int = 0
    """Jobs running now."""
    delayed: int = 0
    """Jobs scheduled for later."""
    delayed_due: int = 0
    """Delayed jobs whose time has come."""


class Recommendation(CamelModel):
    """One replica recommendation kept for the scale-down stabilisation window."""

    at: float
    """Unix seconds of the recommendation."""
    replicas: int
    """Recommended replicas."""


class ScheduleStatus(CamelModel):
    """Where one schedule of the queue stands."""

    name: str
    """The schedule's name."""
    source: str | None = None
    """jobqueue (spec.schedules) or api (added by a client or jobq schedule)."""
    suspended: bool | None = None
    """Paused: no ticks fire."""
    next_run_time: str | None = None
    """When its next tick is due (RFC 3339)."""
    last_run_time: str | None = None
    """When it last submitted a job (RFC 3339)."""
    last_job_id: str | None = None
    """The job it last submitted."""
    last_outcome: str | None = None
    """What its last due tick did: fired, skipped (past its starting deadline) or running
    (Forbid: the last job was unfinished)."""
    skipped_ticks: int | None = None
    """Ticks skipped so far."""


class JobQueueStatus(CamelModel):
    """Observed state of a JobQueue, written by the operator."""

    replicas: int | None = None
    """Replicas of the worker Deployment (the scale subresource's status path)."""
    ready_replicas: int | None = None
    """Ready worker pods."""
    desired_replicas: int | None = None
    """Replica count the operator decided on."""
    selector: str | None = None
    """Label selector of the worker pods (the scale subresource's selector)."""
    queue: str | None = None
    """The Redis queue served."""
    deployment: str | None = None
    """Name of the worker Deployment (the operator's own, or spec.scaleTargetRef's)."""
    scale_target: str | None = None
    """The workload scaled, as Kind/name."""
    signals: list[str] | None = None
    """What the last read of the queue observed (waiting, inFlight, delayed, oldestWait,
    outcomes, workers, workerLoads); a foreign queue system keeps less than this project's
    queue, and the MetricsComplete condition says what the rest costs."""
    backlog: Backlog | None = None
    """Jobs by state."""
    backlog_total: int | None = None
    """queued + active + delayedDue, for the printer column."""
    oldest_wait_seconds: float | None = None
    """Age of the oldest queued job."""
    failure_ratio: float | None = None
    """Failed share of attempts over the failure window."""
    workers: int | None = None
    """Live workers in the queue's registry."""
    last_scale_time: str | None = None
    """When the replica count last changed (RFC 3339)."""
    last_scale_reason: str | None = None
    """Why the replica count last changed."""
    last_poll_time: str | None = None
    """When the queue was read for the status written (RFC 3339); written at once when
    something changes, else at least every 5 minutes. Stalled loops are caught by the
    operator's liveness probe, not by this field."""
    observed_generation: int | None = None
    """metadata.generation last acted on."""
    failure_gate_tripped: bool | None = None
    """Whether the failure gate is tripped (kept here so a restart keeps it)."""
    failure_gate_changed_at: float | None = None
    """Unix seconds of the gate's last change: it changes at most once per failure window."""
    failure_gate_recovering: bool | None = None
    """The gate cleared and the fleet is growing back in steps."""
    recommendations: list[Recommendation] | None = None
    """Recent recommendations for scale-down stabilisation (kept here so a restart
    loses nothing)."""
    conditions: list[Condition] | None = None
    """Ready, RedisReachable, RedisNoEviction, FailureRateHigh, ScalingLimited,
    MetricsComplete."""
    schedules: list[ScheduleStatus] | None = None
    """Each schedule of the queue: its next and last run."""
