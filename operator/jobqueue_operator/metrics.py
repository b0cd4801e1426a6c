"""Prometheus metrics of the operator (all prefixed ``jobqueue_operator_``)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LABELS = ("namespace", "jobqueue", "queue")
BACKLOG_STATES = ("queued", "active", "delayed", "delayed_due")


@dataclass(frozen=True)
class QueueSeries:
    """One JobQueue's series, bound once: ``labels()`` per poll was a visible cost at
    hundreds of polls per second."""

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
            "Replica changes by direction and reason",
            (*LABELS, "direction", "reason"),
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
        self.polls = Counter(p + "polls", "Poll loop iterations", LABELS, registry=r)
        self.leader = Gauge(
            p + "leader",
            "1 while this replica holds the leader-election Lease and acts, else 0 (standby)",
            registry=r,
        )
        self.wakeups = Counter(
            p + "wakeups", "Polls started early by a wake-up from the queue", registry=r
        )

    def series(self, namespace: str, jobqueue: str, queue: str) -> QueueSeries:
        """The per-poll series of one JobQueue (valid until ``forget``)."""
        labels = (namespace, jobqueue, queue)
        return QueueSeries(
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
        )

    def forget(self, namespace: str, jobqueue: str, queue: str) -> None:
        """Drop the series of a JobQueue that is gone."""
        labels = (namespace, jobqueue, queue)
        for gauge in (
            self.oldest_wait,
            self.failure_ratio,
            self.failure_threshold,
            self.desired,
            self.current,
            self.ready,
            self.redis_up,
            self.poll_lag,
            self.polls,
        ):
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)
        for state in BACKLOG_STATES:
            with contextlib.suppress(KeyError):
                self.backlog.remove(*labels, state)
