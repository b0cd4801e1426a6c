"""Prometheus metrics of the operator (all prefixed ``jobqueue_operator_``).

The per-JobQueue series live in queue_series.py (one record per JobQueue, made into
families on scrape); the operator-wide ones are ordinary collectors here."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from jobqueue_operator.queue_series import QueueCollector, QueueSeries

__all__ = ["OperatorMetrics", "QueueSeries"]


class OperatorMetrics:
    """The operator's collectors, on their own registry (tests make fresh ones)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        p = "jobqueue_operator_"
        self.queues = QueueCollector()
        r.register(self.queues)
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
        # One histogram over all JobQueues (no per-queue labels: its cost stays flat with
        # the number of JobQueues), for the lag's tail across the fleet (p99).
        self.poll_lag_all = Histogram(
            p + "poll_lag_all_seconds",
            "How late polls started after their scheduled time, over all JobQueues",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
            registry=r,
        )
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

    def series(self, namespace: str, jobqueue: str, queue: str) -> QueueSeries:
        """The per-poll series of one JobQueue (valid until ``forget``)."""
        return self.queues.bind(namespace, jobqueue, queue)

    def forget(self, namespace: str, jobqueue: str, queue: str) -> None:
        """Drop every series of a JobQueue that is gone (or that reads another queue now)."""
        self.queues.forget(namespace, jobqueue, queue)
