"""Scaling policies the simulator drives: ours (the real decide()), KEDA + HPA, a fixed fleet.

Each policy also states how its pods leave on scale-down, because that is where they differ
most for long jobs: which pod goes, how long it may drain, and when a cut job runs again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Protocol


@dataclass(frozen=True)
class Observation:
    """What a policy may read at one tick (each policy uses only what its real system sees)."""

    now: float
    queued: int  # waiting, ready to run (a KEDA Redis list scaler's LLEN)
    active: int  # running
    delayed: int  # waiting for a retry backoff
    oldest_wait: float  # age of the oldest ready job, 0 when none
    succeeded: int  # attempt outcomes within the failure window
    failed: int
    replicas: int  # the Deployment's replica count
    ready: int  # ready pods
    readable: bool = True  # False while Redis is down: the queue figures above mean nothing
    # Jobs pods took off the list ahead of a free slot (Celery's prefetch): out of the list a
    # list-length scaler reads; our Celery adapter counts them (the broker's unacked hash).
    prefetched: int = 0


class ScalingPolicy(Protocol):
    name: str
    interval: float  # seconds between ticks; 0 never ticks
    victim_order: Literal["newest_ready", "least_busy"]
    drain_seconds: float  # a removed pod finishes its jobs within this, then they are cut
    requeue_delay: float  # a cut job is back in the queue after this long
    failure_window: float

    def initial_replicas(self) -> int: ...

    def tick(self, obs: Observation) -> int: ...

    def resume(self) -> None:
        """The policy's controller comes back after a failover."""


@dataclass
class FixedFleet:
    """A fixed fleet sized for the trace's peak; it never scales."""

    replicas: int
    name: str = "fixed-peak"
    interval: float = 0.0
    victim_order: Literal["newest_ready", "least_busy"] = "newest_ready"
    drain_seconds: float = 30.0
    requeue_delay: float = 30.0
    failure_window: float = 60.0

    def initial_replicas(self) -> int:
        return self.replicas

    def tick(self, obs: Observation) -> int:
        return self.replicas

    def resume(self) -> None:
        pass


@dataclass
class KedaHpa:
    """KEDA's Redis list scaler feeding the HPA, with their defaults.

    KEDA polls every 30 s and owns 0 <-> 1 (activate when LLEN > activationListLength, back
    to zero after cooldownPeriod without activity); the HPA syncs every 15 s with an
    AverageValue target of listLength per pod: desired = ceil(LLEN / listLength), skipped
    within the 0.1 tolerance, scale-up at most max(+100 %, +4 pods) per 15 s, scale-down to
    the highest recommendation of the last 300 s. The list scaler sees only the waiting list
    (never running jobs or backoff retries). Removed pods are chosen as the ReplicaSet does
    without deletion costs (not-ready first, then the most recently ready), get the default
    30 s grace, and a cut job comes back after a 30 s stalled-job check.
    """

    max_replicas: int = 100
    list_length: int = 5
    activation_list_length: int = 0
    polling_interval: float = 30.0
    cooldown: float = 300.0
    tolerance: float = 0.1
    down_window: float = 300.0
    name: str = "keda-hpa"
    interval: float = 15.0
    victim_order: Literal["newest_ready", "least_busy"] = "newest_ready"
    drain_seconds: float = 30.0
    requeue_delay: float = 30.0
    failure_window: float = 60.0
    _recs: list[tuple[float, int]] = field(default_factory=list)
    _last_active: float = -math.inf
    _last_poll: float = -math.inf

    def initial_replicas(self) -> int:
        return 0

    def resume(self) -> None:
        """KEDA's operator came back; the HPA (kube-controller-manager) never left."""

    def tick(self, obs: Observation) -> int:
        current = obs.replicas
        if not obs.readable:
            return current  # the scaler errors: KEDA keeps its state, the HPA holds
        if obs.now - self._last_poll >= self.polling_interval - 1e-9:
            self._last_poll = obs.now
            if obs.queued > self.activation_list_length:
                self._last_active = obs.now
                if current == 0:
                    return 1
            elif current > 0 and obs.now - self._last_active >= self.cooldown:
                self._recs.clear()
                return 0
        if current == 0:
            return 0
        return self._hpa(obs, current)

    def _hpa(self, obs: Observation, current: int) -> int:
        ratio = obs.queued / current / self.list_length
        rec = (
            current
            if abs(ratio - 1.0) <= self.tolerance
            else math.ceil(obs.queued / self.list_length)
        )
        rec = min(max(rec, 1), self.max_replicas)
        self._recs = [(t, r) for t, r in self._recs if t > obs.now - self.down_window]
        self._recs.append((obs.now, rec))
        down = max(r for _, r in self._recs)
        if rec > current:
            desired = min(rec, max(2 * current, current + 4))
        elif down < current:
            desired = down
        else:
            desired = current
        return min(max(desired, 1), self.max_replicas)


def default_gate() -> dict[str, object]:
    """The failure gate of a JobQueue with defaults, as the CRD spells it (for the report)."""
    from jobqueue_operator.spec import FailureRatePolicy

    gate = FailureRatePolicy()
    dumped: dict[str, object] = gate.model_dump(by_alias=True, mode="json")
    dumped["recoveryThreshold"] = gate.effective_recovery_threshold
    return dumped


class Ours:
    """This operator's decide(), imported as it is; this shim only maps the simulator's
    observation onto QueueMetrics/Replicas and keeps the returned state between ticks."""

    victim_order: Literal["newest_ready", "least_busy"] = "least_busy"  # pod-deletion-cost
    requeue_delay = 0.0  # a draining worker releases unfinished jobs at once

    def __init__(self, concurrency: int, max_replicas: int, name: str = "ours",
                 **scaling: object) -> None:  # fmt: skip
        from jobqueue_operator.desired_state import policy_from_spec
        from jobqueue_operator.scaling import ScalingState
        from jobqueue_operator.spec import JobQueueSpec

        spec = JobQueueSpec.model_validate(
            {
                "redis": {"url": "redis://sim:6379/0"},
                "worker": {"concurrency": concurrency},
                "scaling": {"maxReplicas": max_replicas, **scaling},
            }
        )
        self.name = name
        self.spec = spec
        self.policy = policy_from_spec(spec)
        self.state = ScalingState()
        self.interval = spec.scaling.poll_interval_seconds
        self.drain_seconds = float(spec.worker.termination_grace_period_seconds)
        self.failure_window = float(spec.scaling.failure_rate.window_seconds)
        self.reasons: dict[str, int] = {}
        self.gate_changes = 0

    def initial_replicas(self) -> int:
        from jobqueue_operator.desired_state import initial_replicas

        return initial_replicas(self.spec)

    def resume(self) -> None:
        """A new operator replica: the state is what the JobQueue status kept."""
        from jobqueue_operator.desired_state import state_from_status, state_to_status

        self.state = state_from_status(state_to_status(self.state))

    def tick(self, obs: Observation) -> int:
        from jobqueue_operator.scaling import QueueMetrics, Replicas, decide

        metrics = None  # Redis is down: decide() gets no metrics, as in the operator
        if obs.readable:
            metrics = QueueMetrics(
                queued=obs.queued + obs.prefetched,
                active=obs.active,
                delayed=obs.delayed,
                delayed_due=0,  # the simulator moves a due retry into the queue at once
                oldest_wait_seconds=obs.oldest_wait,
                attempts_succeeded=obs.succeeded,
                attempts_failed=obs.failed,
            )
        decision = decide(
            metrics, Replicas(obs.replicas, obs.ready), self.policy, self.state, obs.now
        )
        if decision.state.failure_gate_tripped != self.state.failure_gate_tripped:
            self.gate_changes += 1
        self.state = decision.state
        self.reasons[decision.reason.value] = self.reasons.get(decision.reason.value, 0) + 1
        return decision.desired
