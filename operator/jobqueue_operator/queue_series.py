"""The per-JobQueue series: plain numbers per JobQueue, made into metric families only when
/metrics is scraped.

At 1,000 JobQueues the labelled children these series used to be (20 per JobQueue, each a
metric object with its own lock and value) took about 13 KB per JobQueue, and a scrape spent
nearly half its time walking them. A custom collector (prometheus_client's documented way
to expose values kept elsewhere) keeps one small record per JobQueue instead; the names,
types, labels and help texts are what they were.

The poll loops write the records in the event loop; prometheus_client scrapes in its own
thread. Each record field is one float written at a time, and the collector copies the
dicts it walks first (a C-level copy, atomic under the GIL), so a scrape sees each value
either before or after a poll, never a torn one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from jobqueue_operator.scaling import Decision, Policy, QueueMetrics

PREFIX = "jobqueue_operator_"
LABELS = ("namespace", "jobqueue", "queue")
BACKLOG_STATES = ("queued", "active", "delayed", "delayed_due")

# (field of QueueSeries, metric name without the prefix, help): one gauge per JobQueue each.
GAUGES: tuple[tuple[str, str, str], ...] = (
    ("oldest_wait", "oldest_wait_seconds", "Age of the oldest queued job"),
    ("failure_ratio", "failure_ratio", "Failed share of attempts in the failure window"),
    (
        "lease_lapses",
        "lease_lapses_5m",
        "Leases that lapsed in the last 5 minutes (workers killed, out of memory, cut off "
        "or stalled past their lease): given back to the queue, not counted as failures",
    ),
    (
        "failure_threshold",
        "failure_threshold",
        "The failure ratio at which this queue's failure gate trips (its spec)",
    ),
    ("desired", "desired_replicas", "Replicas decided on"),
    ("current", "current_replicas", "Replicas of the worker Deployment"),
    ("ready", "ready_replicas", "Ready worker pods"),
    ("redis_up", "redis_reachable", "1 when the last queue read succeeded"),
    ("gate_tripped", "failure_gate_tripped", "1 while the failure gate is tripped"),
    (
        "gate_recovering",
        "failure_gate_recovering",
        "1 while the fleet grows back in steps after the failure gate cleared",
    ),
    ("min_replicas", "min_replicas", "spec.scaling.minReplicas"),
    ("max_replicas", "max_replicas", "spec.scaling.maxReplicas"),
    ("poll_lag", "poll_lag_seconds", "How late the last poll started after its scheduled time"),
)
BACKLOG = ("backlog_jobs", "Jobs in the queue by state")
TARGET_WAIT = ("target_wait_seconds", "spec.scaling.targetWaitSeconds (no series when unset)")
POLLS = ("polls", "Poll loop iterations")
DECISIONS = (
    "scale_decisions",
    "Scaling decisions (one per poll) by direction (up, down, none) and reason",
)
SCALE_EVENTS = ("scale_events", "Replica count changes by direction and reason")


@dataclass(slots=True, eq=False)
class QueueSeries:
    """One JobQueue's figures, as its poll loop last set them."""

    labels: tuple[str, str, str]
    polls: float = 0.0
    poll_lag: float = 0.0
    desired: float = 0.0
    current: float = 0.0
    ready: float = 0.0
    redis_up: float = 0.0
    backlog: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # BACKLOG_STATES
    oldest_wait: float = 0.0
    failure_ratio: float = 0.0
    failure_threshold: float = 0.0
    lease_lapses: float = 0.0
    gate_tripped: float = 0.0
    gate_recovering: float = 0.0
    min_replicas: float = 0.0
    max_replicas: float = 0.0
    target_wait: float | None = None  # no series while the spec sets no target
    decisions: dict[tuple[str, str], float] = field(default_factory=dict)
    scale_events: dict[tuple[str, str], float] = field(default_factory=dict)

    def polled(self, lag: float) -> None:
        """Count one poll that started ``lag`` seconds late."""
        self.polls += 1
        self.poll_lag = lag

    def decided(self, direction: str, reason: str) -> None:
        """Count one decision (direction: up, down or none)."""
        key = (direction, reason)
        self.decisions[key] = self.decisions.get(key, 0.0) + 1

    def scaled(self, direction: str, reason: str) -> None:
        """Count one change of the replica count."""
        key = (direction, reason)
        self.scale_events[key] = self.scale_events.get(key, 0.0) + 1

    def record(
        self,
        queue: QueueMetrics | None,
        decision: Decision,
        current: int,
        ready: int,
        policy: Policy,
    ) -> None:
        """The gauges of one poll (``queue`` is None when it could not be read)."""
        self.desired = decision.desired
        self.current = current
        self.ready = ready
        self.redis_up = 1 if queue is not None else 0
        self.failure_threshold = policy.failure_threshold
        self.gate_tripped = 1 if decision.state.failure_gate_tripped else 0
        self.gate_recovering = 1 if decision.state.recovering else 0
        self.min_replicas = policy.min_replicas
        self.max_replicas = policy.max_replicas
        self.target_wait = policy.target_wait_seconds
        if queue is not None:
            self.backlog = (queue.queued, queue.active, queue.delayed, queue.delayed_due)
            self.oldest_wait = queue.oldest_wait_seconds
            self.failure_ratio = queue.failure_ratio


class QueueCollector(Collector):
    """Every bound JobQueue's series, as metric families on each scrape."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str, str], QueueSeries] = {}

    def bind(self, namespace: str, jobqueue: str, queue: str) -> QueueSeries:
        """The series of one JobQueue reading ``queue`` (kept until ``forget``)."""
        labels = (namespace, jobqueue, queue)
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = QueueSeries(labels)
        return series

    def forget(self, namespace: str, jobqueue: str, queue: str) -> None:
        """Drop every series of a JobQueue that is gone (or that reads another queue now)."""
        self._series.pop((namespace, jobqueue, queue), None)

    def __len__(self) -> int:
        return len(self._series)

    def describe(self) -> Iterator[Metric]:
        return iter(_Families())

    def collect(self) -> Iterator[Metric]:
        families = _Families()
        for series in list(self._series.values()):
            families.add(series)
        return iter(families)


class _Families:
    """The families of one scrape (empty ones too: a dashboard's queries find them)."""

    def __init__(self) -> None:
        def gauge(name: str, help_text: str, *extra: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(PREFIX + name, help_text, labels=(*LABELS, *extra))

        def counter(name: str, help_text: str, *extra: str) -> CounterMetricFamily:
            return CounterMetricFamily(PREFIX + name, help_text, labels=(*LABELS, *extra))

        self.backlog = gauge(*BACKLOG, "state")
        self.gauges = [(attr, gauge(name, text)) for attr, name, text in GAUGES]
        self.target_wait = gauge(*TARGET_WAIT)
        self.polls = counter(*POLLS)
        self.decisions = counter(*DECISIONS, "direction", "reason")
        self.scale_events = counter(*SCALE_EVENTS, "direction", "reason")

    def add(self, series: QueueSeries) -> None:
        labels = list(series.labels)
        for state, value in zip(BACKLOG_STATES, series.backlog, strict=True):
            self.backlog.add_metric([*labels, state], value)
        for attr, family in self.gauges:
            family.add_metric(labels, getattr(series, attr))
        if series.target_wait is not None:
            self.target_wait.add_metric(labels, series.target_wait)
        self.polls.add_metric(labels, series.polls)
        for (direction, reason), count in list(series.decisions.items()):
            self.decisions.add_metric([*labels, direction, reason], count)
        for (direction, reason), count in list(series.scale_events.items()):
            self.scale_events.add_metric([*labels, direction, reason], count)

    def __iter__(self) -> Iterator[Metric]:
        yield self.backlog
        yield from (family for _, family in self.gauges)
        yield from (self.target_wait, self.polls, self.decisions, self.scale_events)
