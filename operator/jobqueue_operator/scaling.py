"""The scaling decision: a pure function of plain data (no I/O, no clock, no globals).

``decide(metrics, replicas, policy, state, now)`` returns the desired replica count, a
reason, and the next state. The operator and the benchmark simulator both call it.

Rules (issue 4, "Scaling"):
- backlog cover: ceil((queued + active + due) / targetBacklogPerReplica);
- latency: when the oldest queued job waits longer than targetWaitSeconds, raise to
  ceil(current * wait / target), at least current + 1 and at most double per step (the
  HPA's +100 % bound). Oldest wait is a lagging signal: it stays high until new pods pick
  the old jobs up, so the rule does not fire again while a scale-up is still starting
  (ready < current); that keeps it from running away;
- clamp to [min, max]; scale-up at once; scale-down only to the highest recommendation of
  the stabilisation window; zero only when nothing is queued, active or due;
- failure gate with minSamples and hysteresis, shaped as a circuit breaker. Backoff (the
  default) sheds at once to the share of the fleet whose attempts succeed,
  min(current, ceil(recommended * (1 - failure ratio))), never scaling up while tripped:
  a dead dependency leaves only the probe, so waiting jobs keep their attempts for after
  the recovery instead of burning them, while a partial failure keeps a matching part of
  the fleet. Hold caps the count at the current one; ScaleToMin goes to minReplicas at once.
  While tripped, at least one replica stays as a probe when work is waiting (otherwise a
  gate at zero replicas sees no attempts and could never judge recovery), and the gate
  clears only on evidence: the window's ratio at or below the recovery threshold with at
  least one attempt in it, or an idle queue. How early it trips is set by the window the
  outcomes are counted over (spec: failureRate.windowSeconds);
- no metrics: hold the count as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


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
    FAILURE_HOLD = "FailureRateHold"
    FAILURE_SCALE_TO_MIN = "FailureRateScaleToMin"
    FAILURE_BACKOFF = "FailureRateBackoff"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    MANUAL = "Manual"
    PAUSED = "Paused"


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
class Policy:
    """The scaling part of a JobQueue spec, as plain data."""

    min_replicas: int = 0
    max_replicas: int = 10
    target_backlog_per_replica: int = 1
    target_wait_seconds: float | None = None
    scale_down_stabilization_seconds: float = 60.0
    mode: Literal["Auto", "Manual", "Paused"] = "Auto"
    manual_replicas: int | None = None
    failure_gate_enabled: bool = True
    failure_threshold: float = 0.5
    failure_recovery_threshold: float = 0.25
    failure_min_samples: int = 20
    failure_action: Literal["Backoff", "Hold", "ScaleToMin"] = "Backoff"


@dataclass(frozen=True)
class ScalingState:
    """What decide() carries from one call to the next (kept in the JobQueue status).

    ``recommendations`` holds (time, replicas) pairs of the stabilisation window with
    dominated entries dropped (an older entry no higher than a newer one can never be the
    window's maximum), so it stays short: strictly decreasing in replicas.
    """

    recommendations: tuple[tuple[float, int], ...] = ()
    failure_gate_tripped: bool = False


@dataclass(frozen=True)
class Decision:
    """The outcome of one decide() call."""

    desired: int
    reason: Reason
    message: str
    state: ScalingState
    recommended: int | None = None  # clamped recommendation before stabilisation/gate
    limited: bool = False  # the backlog asked for more than maxReplicas
    failure_gate_tripped: bool = False
    details: dict[str, float] = field(default_factory=dict)


def decide(
    metrics: QueueMetrics | None,
    replicas: Replicas,
    policy: Policy,
    state: ScalingState,
    now: float,
) -> Decision:
    """Desired replicas for one poll; ``metrics`` is None when the queue could not be read."""
    current = replicas.current
    if policy.mode == "Paused":
        return Decision(current, Reason.PAUSED, "scaling paused", state)
    if policy.mode == "Manual":
        desired = current if policy.manual_replicas is None else policy.manual_replicas
        return Decision(desired, Reason.MANUAL, f"manual: {desired} replicas", state)
    if metrics is None:
        return Decision(
            current,
            Reason.METRICS_UNAVAILABLE,
            f"queue metrics unavailable; holding {current} replicas",
            state,
            failure_gate_tripped=state.failure_gate_tripped,
        )

    tripped = _failure_gate(metrics, policy, state.failure_gate_tripped)
    # A tripped gate keeps one probe replica while work waits, so outcomes keep coming.
    probe = min(1, policy.max_replicas) if tripped and metrics.backlog > 0 else 0
    by_backlog = math.ceil(metrics.backlog / max(policy.target_backlog_per_replica, 1))
    by_latency = _latency_recommendation(metrics, replicas, policy)
    raw = max(by_backlog, by_latency)
    recommended = min(max(raw, policy.min_replicas), policy.max_replicas)
    limited = raw > policy.max_replicas
    details = {
        "by_backlog": float(by_backlog),
        "by_latency": float(by_latency),
        "failure_ratio": metrics.failure_ratio,
    }

    if tripped and policy.failure_action in ("ScaleToMin", "Backoff"):
        floor = max(policy.min_replicas, probe)
        ratio = f"failure ratio {metrics.failure_ratio:.2f} >= {policy.failure_threshold}"
        if policy.failure_action == "ScaleToMin":
            desired, reason = floor, Reason.FAILURE_SCALE_TO_MIN
            kept = " (one probe replica)" if desired > policy.min_replicas else ""
            message = f"{ratio}; scaled to minReplicas {policy.min_replicas}{kept}"
        else:
            desired, reason = _backoff(metrics, current, recommended, floor), Reason.FAILURE_BACKOFF
            message = (
                f"{ratio}; backing off to {desired} replicas, the succeeding share of "
                f"{recommended} (never more than the current {current} while tripped)"
            )
        # Shedding restarts the stabilisation window: after recovery the backlog decides.
        new_state = ScalingState(((now, desired),), True)
        return Decision(desired, reason, message, new_state, recommended, limited, True, details)

    # No history (first poll, or state lost): count the current size as recommended now,
    # so a scale-down still waits out a full window.
    history = state.recommendations or ((now, current),)
    window = _window(history, recommended, now, policy)
    stabilized = max(r for _, r in window)
    desired = max(recommended, min(current, stabilized))
    reason, message = _explain(metrics, current, recommended, desired, by_latency, by_backlog)
    if limited and desired == policy.max_replicas:
        reason = Reason.MAX_REPLICAS
        message = f"{message}; capped at maxReplicas {policy.max_replicas} (wanted {raw})"
    held = max(current, policy.min_replicas, probe)  # Hold never goes below minReplicas
    if tripped and desired > held:
        reason = Reason.FAILURE_HOLD
        message = (
            f"failure ratio {metrics.failure_ratio:.2f} >= {policy.failure_threshold}; "
            f"holding {held} replicas (would scale to {desired})"
        )
        desired = held
    new_state = ScalingState(window, tripped)
    return Decision(desired, reason, message, new_state, recommended, limited, tripped, details)


def _failure_gate(metrics: QueueMetrics, policy: Policy, tripped: bool) -> bool:
    """Trip at the threshold with enough samples. Once tripped, clear only on evidence of
    recovery (attempts in the window failing at no more than the recovery threshold) or
    when the queue has nothing left to run: an empty window alone proves nothing."""
    if not policy.failure_gate_enabled:
        return False
    ratio = metrics.failure_ratio
    if not tripped:
        return metrics.samples >= policy.failure_min_samples and ratio >= policy.failure_threshold
    if metrics.backlog == 0:
        return False
    return metrics.samples == 0 or ratio > policy.failure_recovery_threshold


def _backoff(metrics: QueueMetrics, current: int, recommended: int, floor: int) -> int:
    """Replicas kept while tripped: the share of the recommendation whose attempts succeed
    (none in an empty window: the probe alone judges recovery), never above the current
    count, never below the floor (minReplicas, or the probe while work waits)."""
    succeeding = 0
    if metrics.samples:  # integer ceil(recommended * succeeded / samples): no float edge
        succeeding = -(-recommended * metrics.attempts_succeeded // metrics.samples)
    return max(floor, min(current, succeeding))


def _latency_recommendation(metrics: QueueMetrics, replicas: Replicas, policy: Policy) -> int:
    target = policy.target_wait_seconds
    waiting = metrics.queued + metrics.delayed_due
    if target is None or waiting == 0 or metrics.oldest_wait_seconds <= target:
        return 0
    current = replicas.current
    if replicas.ready < current:
        return current  # a scale-up is still starting; let it land before judging again
    factor = min(metrics.oldest_wait_seconds / target, 2.0)
    return max(current + 1, math.ceil(current * factor))


def _window(
    history: tuple[tuple[float, int], ...], recommended: int, now: float, policy: Policy
) -> tuple[tuple[float, int], ...]:
    """Keep the window's recommendations (dominated ones dropped) plus this one."""
    horizon = now - policy.scale_down_stabilization_seconds
    kept = [(t, r) for t, r in history if horizon < t <= now and r > recommended]
    return (*kept, (now, recommended))


def _explain(
    metrics: QueueMetrics,
    current: int,
    recommended: int,
    desired: int,
    by_latency: int,
    by_backlog: int,
) -> tuple[Reason, str]:
    backlog = f"backlog {metrics.backlog} (queued {metrics.queued}, active {metrics.active})"
    if desired > current:
        if by_latency > by_backlog and desired == recommended:
            wait = metrics.oldest_wait_seconds
            return Reason.QUEUE_LATENCY, f"oldest job waits {wait:.1f}s; {current} -> {desired}"
        if desired == recommended and by_backlog < recommended:
            return Reason.MIN_REPLICAS, f"minReplicas {desired}"
        return Reason.BACKLOG, f"{backlog}; {current} -> {desired}"
    if desired < current:
        if desired == 0:
            return Reason.IDLE, f"queue idle for the stabilisation window; {current} -> 0"
        return Reason.SCALE_DOWN, f"{backlog}; {current} -> {desired}"
    if recommended < current:
        return Reason.STABILIZING, f"{backlog}; holding {current} until the window passes"
    return Reason.STEADY, f"{backlog}; {current} replicas"
