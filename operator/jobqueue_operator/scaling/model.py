"""The plain data the scaling decision takes and returns (no I/O, no clock, no globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

FailureAction = Literal["Backoff", "Hold", "ScaleToMin"]
Select = Literal["Max", "Min", "Disabled"]


class Reason(StrEnum):
    """Why the desired count is what it is (used in status, events and metrics)."""

    BACKLOG = "Backlog"
    QUEUE_LATENCY = "QueueLatency"
    MAX_REPLICAS = "MaxReplicas"
    MIN_REPLICAS = "MinReplicas"
    SCALE_DOWN = "ScaleDown"
    IDLE = "Idle"
    STABILIZING = "Stabilizing"
    STEADY = "Steady"
    SCALE_UP_LIMITED = "ScaleUpLimited"
    SCALE_DOWN_LIMITED = "ScaleDownLimited"
    FAILURE_HOLD = "FailureRateHold"
    FAILURE_SCALE_TO_MIN = "FailureRateScaleToMin"
    FAILURE_BACKOFF = "FailureRateBackoff"
    FAILURE_RECOVERY = "FailureRateRecovery"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    MANUAL = "Manual"
    PAUSED = "Paused"


GATE_REASONS = {
    "Backoff": Reason.FAILURE_BACKOFF,
    "Hold": Reason.FAILURE_HOLD,
    "ScaleToMin": Reason.FAILURE_SCALE_TO_MIN,
}


@dataclass(frozen=True)
class QueueMetrics:
    """What a queue source observed (one read)."""

    queued: int
    active: int
    delayed: int = 0
    delayed_due: int = 0
    oldest_wait_seconds: float = 0.0
    attempts_succeeded: int = 0
    attempts_failed: int = 0

    @property
    def backlog(self) -> int:
        """Jobs that need a worker now or are running."""
        return self.queued + self.active + self.delayed_due

    @property
    def pending(self) -> int:
        """Jobs not finished yet, retries waiting for their backoff included: work the
        failure gate must still judge (a queue whose jobs all wait for a retry is not idle)."""
        return self.queued + self.active + self.delayed

    @property
    def samples(self) -> int:
        """Attempt outcomes in the failure window."""
        return self.attempts_succeeded + self.attempts_failed

    @property
    def failure_ratio(self) -> float:
        """Failed share of attempts in the window; 0.0 with no samples."""
        return self.attempts_failed / self.samples if self.samples else 0.0


@dataclass(frozen=True)
class Replicas:
    """The worker Deployment as it is."""

    current: int
    ready: int


@dataclass(frozen=True)
class RateLimit:
    """At most ``value`` pods (Pods) or ``value`` % of the count at the period's start
    (Percent) added or removed within ``period_seconds`` (the HPA's behaviour policies)."""

    kind: Literal["Pods", "Percent"]
    value: int
    period_seconds: float


@dataclass(frozen=True)
class ScaleRule:
    """Rate limits of one direction: with several, ``Max`` allows the largest change and
    ``Min`` the smallest; ``Disabled`` allows none; no limits at all means no limit."""

    limits: tuple[RateLimit, ...] = ()
    select: Select = "Max"


@dataclass(frozen=True)
class Policy:
    """The scaling part of a JobQueue spec, as plain data."""

    min_replicas: int = 0
    max_replicas: int = 10
    target_backlog_per_replica: int = 1
    target_wait_seconds: float | None = None
    jobs_per_replica: int | None = None  # worker concurrency; None: the backlog target
    scale_down_stabilization_seconds: float = 60.0
    poll_interval_seconds: float = 2.0
    pod_startup_seconds: float = 60.0
    scale_up: ScaleRule = ScaleRule()
    scale_down: ScaleRule = ScaleRule()
    mode: Literal["Auto", "Manual", "Paused"] = "Auto"
    manual_replicas: int | None = None
    failure_gate_enabled: bool = True
    failure_threshold: float = 0.5
    failure_recovery_threshold: float = 0.25
    failure_min_samples: int = 20
    failure_window_seconds: float = 20.0
    failure_action: FailureAction = "Backoff"

    @property
    def concurrency(self) -> int:
        """Jobs one replica runs at a time: what the rules count a busy pod by."""
        return max(self.jobs_per_replica or self.target_backlog_per_replica, 1)

    @property
    def stale_after_seconds(self) -> float:
        """A gap between decisions longer than this is missing history (an outage of the
        queue, an operator failover, a spell in Manual or Paused): nothing is known of what
        the queue asked for meanwhile."""
        return max(STALE_POLLS * self.poll_interval_seconds, STALE_FLOOR_SECONDS)


# Polls that may be missed (late or failed reads) before history counts as missing; the
# floor keeps a loaded operator with short intervals from declaring every gap stale.
STALE_POLLS = 3
STALE_FLOOR_SECONDS = 10.0


@dataclass(frozen=True)
class ScalingState:
    """What decide() carries from one call to the next.

    ``recommendations`` holds (time, replicas) pairs of the stabilisation window with
    dominated entries dropped (an older entry no higher than a newer one can never be the
    window's maximum), so it stays short: strictly decreasing in replicas.
    ``updated_at`` is when the window was last fed; None (a fresh start, a state read back
    from status) or a time further back than ``Policy.stale_after_seconds`` means the window
    restarts from the current count. ``scale_events`` are (time, change) pairs for the rate
    limits; ``starting_since`` is since when pods are starting (ready < current, or a
    scale-up was just asked for) and ``starting_ready`` how many were ready then.
    The JobQueue status keeps the window and the gate (tripped, since when, recovering), so
    a restart keeps the gate where it was; the rest starts afresh.
    """

    recommendations: tuple[tuple[float, int], ...] = ()
    failure_gate_tripped: bool = False
    gate_changed_at: float | None = None
    recovering: bool = False
    updated_at: float | None = None
    starting_since: float | None = None
    starting_ready: int = 0
    failure_ratio_seen: tuple[float, float] | None = None  # (time, ratio) of the last read
    scale_events: tuple[tuple[float, int], ...] = ()


@dataclass(frozen=True)
class Decision:
    """The outcome of one decide() call."""

    desired: int
    reason: Reason
    message: str
    state: ScalingState
    recommended: int | None = None  # clamped recommendation before stabilisation/gate
    limited: bool = False  # the queue asked for more than maxReplicas
    failure_gate_tripped: bool = False
    details: dict[str, float] = field(default_factory=dict)
