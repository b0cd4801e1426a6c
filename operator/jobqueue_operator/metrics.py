"""Prometheus metrics of the operator (all prefixed ``jobqueue_operator_``)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from jobqueue_operator.scaling import Decision, Policy, QueueMetrics

LABELS = ("namespace", "jobqueue", "queue")
BACKLOG_STATES = ("queued", "active", "delayed", "delayed_due")


@dataclass(frozen=True)
class QueueSeries:
    """One JobQueue's series, bound once: ``labels()`` per poll was a visible cost at
    hundreds of polls per second. Series with more labels than the JobQueue's (decisions by
    direction and reason) are bound on first use and remembered, so ``forget`` finds them."""

    metrics: OperatorMetrics
    labels: tuple[str, str, str]
    polls: Counter
    poll_lag: Gauge
    desired: Gauge
    current: Gauge
    ready: Gauge
    redis_up: Gauge
    backlog: dict[str, Gauge]
    oldest_wait: Gauge
    failure_ratio: Gauge
    failure_threshold: Gauge
    lease_lapses: Gauge
    gate_tripped: Gauge
    gate_recovering: Gauge
    min_replicas: Gauge
    max_replicas: Gauge
    decisions: dict[tuple[str, str], Counter] = field(default_factory=dict)
    scale_events: dict[tuple[str, str], Counter] = field(default_factory=dict)

    def decided(self, direction: str, reason: str) -> None:
        """Count one decision (direction: up, down or none)."""
        counter = self.decisions.get((direction, reason))
        if counter is None:
            counter = self.decisions[(direction, reason)] = self.metrics.decisions.labels(
                *self.labels, direction, reason
            )
        counter.inc()

    def scaled(self, direction: str, reason: str) -> None:
        """Count one change of the replica count."""
        counter = self.scale_events.get((direction, reason))
        if counter is None:
            counter = self.scale_events[(direction, reason)] = self.metrics.scale_events.labels(
                *self.labels, direction, reason
            )
        counter.inc()

    def record(
        self,
        queue: QueueMetrics | None,
        decision: Decision,
        current: int,
        ready: int,
        policy: Policy,
    ) -> None:
        """The gauges of one poll (``queue`` is None when it could not be read)."""
        self.desired.set(decision.desired)
        self.current.set(current)
        self.ready.set(ready)
        self.redis_up.set(1 if queue is not None else 0)
        self.failure_threshold.set(policy.failure_threshold)
        self.gate_tripped.set(1 if decision.state.failure_gate_tripped else 0)
        self.gate_recovering.set(1 if decision.state.recovering else 0)
        self.min_replicas.set(policy.min_replicas)
        self.max_replicas.set(policy.max_replicas)
        if policy.target_wait_seconds is None:  # no target, no series
            with contextlib.suppress(KeyError):
                self.metrics.target_wait.remove(*self.labels)
        else:
            self.metrics.target_wait.labels(*self.labels).set(policy.target_wait_seconds)
        if queue is not None:
            for state, value in (
                ("queued", queue.queued),
                ("active", queue.active),
                ("delayed", queue.delayed),
                ("delayed_due", queue.delayed_due),
            ):
                self.backlog[state].set(value)
            self.oldest_wait.set(queue.oldest_wait_seconds)
            self.failure_ratio.set(queue.failure_ratio)


class OperatorMetrics:
    """The operator's collectors, on their own registry (tests make fresh ones)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        p = "jobqueue_operator_"
        self.backlog = Gauge(
            p + "backlog_jobs", "Jobs in the queue by state", (*LABELS, "state"), registry=r
        )
        self.oldest_wait = Gauge(
            p + "oldest_wait_seconds", "Age of the oldest queued job", LABELS, registry=r
        )
        self.failure_ratio = Gauge(
            p + "failure_ratio",
            "Failed share of attempts in the failure window",
            LABELS,
            registry=r,
        )
        self.lease_lapses = Gauge(
            p + "lease_lapses_5m",
            "Leases that lapsed in the last 5 minutes (workers killed, out of memory, cut off "
            "or stalled past their lease): given back to the queue, not counted as failures",
            LABELS,
            registry=r,
        )
        self.failure_threshold = Gauge(
            p + "failure_threshold",
            "The failure ratio at which this queue's failure gate trips (its spec)",
            LABELS,
            registry=r,
        )
        self.desired = Gauge(p + "desired_replicas", "Replicas decided on", LABELS, registry=r)
        self.current = Gauge(
            p + "current_replicas", "Replicas of the worker Deployment", LABELS, registry=r
        )
        self.ready = Gauge(p + "ready_replicas", "Ready worker pods", LABELS, registry=r)
        self.redis_up = Gauge(
            p + "redis_reachable", "1 when the last queue read succeeded", LABELS, registry=r
        )
        self.decisions = Counter(
            p + "scale_decisions",
            "Scaling decisions (one per poll) by direction (up, down, none) and reason",
            (*LABELS, "direction", "reason"),
            registry=r,
        )
        self.scale_events = Counter(
            p + "scale_events",
            "Replica count changes by direction and reason",
            (*LABELS, "direction", "reason"),
            registry=r,
        )
        self.gate_tripped = Gauge(
            p + "failure_gate_tripped", "1 while the failure gate is tripped", LABELS, registry=r
        )
        self.gate_recovering = Gauge(
            p + "failure_gate_recovering",
            "1 while the fleet grows back in steps after the failure gate cleared",
            LABELS,
            registry=r,
        )
        self.min_replicas = Gauge(
            p + "min_replicas", "spec.scaling.minReplicas", LABELS, registry=r
        )
        self.max_replicas = Gauge(
            p + "max_replicas", "spec.scaling.maxReplicas", LABELS, registry=r
        )
        self.target_wait = Gauge(
            p + "target_wait_seconds",
            "spec.scaling.targetWaitSeconds (no series when unset)",
            LABELS,
            registry=r,
        )
        self.reconcile_errors = Counter(
            p + "reconcile_errors", "Errors in reconciliation steps", ("step",), registry=r
        )
        self.reconcile_duration = Histogram(
            p + "reconcile_duration_seconds",
            "Duration of reconciliation steps",
            ("step",),
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.poll_lag = Gauge(
            p + "poll_lag_seconds",
            "How late the last poll started after its scheduled time",
            LABELS,
            registry=r,
        )
        # One histogram over all JobQueues (no per-queue labels: its cost stays flat with
        # the number of JobQueues), for the lag's tail across the fleet (p99).
        self.poll_lag_all = Histogram(
            p + "poll_lag_all_seconds",
            "How late polls started after their scheduled time, over all JobQueues",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
            registry=r,
        )
        self.polls = Counter(p + "polls", "Poll loop iterations", LABELS, registry=r)
        self.leader = Gauge(
            p + "leader",
            "1 while this replica holds the leader-election Lease and acts, else 0 (standby)",
            registry=r,
        )
        self.idle_loops = Gauge(
            p + "idle_loops",
            "Poll loops of empty queues at zero replicas, polling every IDLE_POLL_SECONDS "
            "until their queue announces work",
            registry=r,
        )
        self.wakeups = Counter(
            p + "wakeups", "Polls started early by a wake-up from the queue", registry=r
        )
        self._bound: dict[tuple[str, str, str], list[QueueSeries]] = {}

    def series(self, namespace: str, jobqueue: str, queue: str) -> QueueSeries:
        """The per-poll series of one JobQueue (valid until ``forget``)."""
        labels = (namespace, jobqueue, queue)
        series = QueueSeries(
            metrics=self,
            labels=labels,
            polls=self.polls.labels(*labels),
            poll_lag=self.poll_lag.labels(*labels),
            desired=self.desired.labels(*labels),
            current=self.current.labels(*labels),
            ready=self.ready.labels(*labels),
            redis_up=self.redis_up.labels(*labels),
            backlog={s: self.backlog.labels(*labels, s) for s in BACKLOG_STATES},
            oldest_wait=self.oldest_wait.labels(*labels),
            failure_ratio=self.failure_ratio.labels(*labels),
            failure_threshold=self.failure_threshold.labels(*labels),
            lease_lapses=self.lease_lapses.labels(*labels),
            gate_tripped=self.gate_tripped.labels(*labels),
            gate_recovering=self.gate_recovering.labels(*labels),
            min_replicas=self.min_replicas.labels(*labels),
            max_replicas=self.max_replicas.labels(*labels),
        )
        self._bound.setdefault(labels, []).append(series)
        return series

    def forget(self, namespace: str, jobqueue: str, queue: str) -> None:
        """Drop every series of a JobQueue that is gone (or that reads another queue now)."""
        labels = (namespace, jobqueue, queue)
        for gauge in (
            self.oldest_wait,
            self.failure_ratio,
            self.failure_threshold,
            self.lease_lapses,
            self.desired,
            self.current,
            self.ready,
            self.redis_up,
            self.poll_lag,
            self.polls,
            self.gate_tripped,
            self.gate_recovering,
            self.min_replicas,
            self.max_replicas,
            self.target_wait,
        ):
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)
        for state in BACKLOG_STATES:
            with contextlib.suppress(KeyError):
                self.backlog.remove(*labels, state)
        for series in self._bound.pop(labels, []):
            for counter, children in (
                (self.decisions, series.decisions),
                (self.scale_events, series.scale_events),
            ):
                for extra in children:
                    with contextlib.suppress(KeyError):
                        counter.remove(*labels, *extra)
