"""Workloads: arrival traces and heavy-tailed job durations, generated from a seed.

A trace is a rate function (jobs/s over time) plus optional trouble: an outage of a
dependency (every attempt fails), of Redis (nothing can be read, taken or submitted), of the
operator (a failover: no decisions), and pods that crash-loop. It may also change the
simulated cluster (``cluster``: Cluster fields) and our JobQueue's scaling spec (``ours``),
e.g. a latency target. Arrivals are an inhomogeneous Poisson process drawn by thinning.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Span = tuple[float, float]


@dataclass(frozen=True)
class Trace:
    name: str
    description: str
    horizon: float  # seconds of arrivals
    rate: Callable[[float], float]  # jobs/s at time t
    rate_max: float  # an upper bound of rate(), for thinning
    outage: Span | None = None  # [start, end): every attempt started inside fails
    redis_outage: Span | None = None  # nothing read, taken or submitted (submits fail)
    operator_down: Span | None = None  # no scaling decisions (a failover); state from status
    median_seconds: float = 1.0  # job durations: lognormal with this median ...
    sigma: float = 1.5  # ... and this sigma
    cluster: dict[str, Any] = field(default_factory=dict)  # Cluster overrides
    ours: dict[str, Any] = field(default_factory=dict)  # our JobQueue's spec.scaling overrides
    steady: bool = False  # constant load: scale events after warm-up are the settling figure
    # Failed attempts are slow (timeouts): a gate that sheds to a probe must spend far fewer
    # of them than a fleet that keeps growing (with fast failures a probe burns them too).
    slow_failures: bool = False

    @property
    def trouble(self) -> Span | None:
        """The span the trace is about (for the per-phase figures and the plots)."""
        return self.outage or self.redis_outage or self.operator_down


@dataclass(frozen=True)
class Workload:
    trace: Trace
    arrivals: list[float]
    durations: list[float]  # seconds of work for each job when its dependency is healthy

    @property
    def mean_duration(self) -> float:
        return sum(self.durations) / max(len(self.durations), 1)


def durations(rng: random.Random, n: int, median: float = 1.0, sigma: float = 1.5) -> list[float]:
    """Lognormal durations (heavy tail: mean ~3x the median, p99 ~33x), capped at 15 min."""
    mu = math.log(median)
    return [min(rng.lognormvariate(mu, sigma), 900.0) for _ in range(n)]


def arrivals(rng: random.Random, trace: Trace) -> list[float]:
    out: list[float] = []
    t = 0.0
    while True:
        t += rng.expovariate(trace.rate_max)
        if t >= trace.horizon:
            return out
        if rng.random() * trace.rate_max < trace.rate(t):
            out.append(t)


def build(trace: Trace, seed: int) -> Workload:
    rng = random.Random(f"{trace.name}:{seed}")
    times = arrivals(rng, trace)
    if trace.redis_outage is not None:  # those submits failed: the jobs never existed
        start, end = trace.redis_outage
        times = [t for t in times if not start <= t < end]
    return Workload(trace, times, durations(rng, len(times), trace.median_seconds, trace.sigma))


def poisson(horizon: float, rate: float = 8.0) -> Trace:
    return Trace(
        "poisson", f"steady Poisson, {rate:g} jobs/s", horizon, lambda t: rate, rate, steady=True
    )


def bursts(horizon: float, base: float = 1.0, burst_jobs: int = 1500, every: float = 600.0,
           burst_seconds: float = 10.0) -> Trace:  # fmt: skip
    """A low base rate plus a burst of burst_jobs within burst_seconds every `every` seconds."""
    peak = burst_jobs / burst_seconds

    def rate(t: float) -> float:
        phase = (t - every / 3) % every
        return base + (peak if 0 <= phase < burst_seconds and t >= every / 3 else 0.0)

    return Trace(
        "bursts",
        f"{base:g} jobs/s plus {burst_jobs} jobs in {burst_seconds:g} s every {every / 60:g} min",
        horizon,
        rate,
        base + peak,
    )


def daily(horizon: float, low: float = 1.0, high: float = 12.0, spikes: int = 4,
          spike_rate: float = 40.0, spike_seconds: float = 60.0) -> Trace:  # fmt: skip
    """One day's curve squeezed into `horizon` (night low, afternoon high) with short spikes."""
    spike_starts = [horizon * (i + 0.5) / spikes for i in range(spikes)]

    def rate(t: float) -> float:
        curve = low + (high - low) * 0.5 * (1 - math.cos(2 * math.pi * t / horizon))
        spike = any(s <= t < s + spike_seconds for s in spike_starts)
        return curve + (spike_rate if spike else 0.0)

    return Trace(
        "daily",
        f"daily curve {low:g}-{high:g} jobs/s over {horizon / 3600:g} h with {spikes} spikes of "
        f"+{spike_rate:g} jobs/s for {spike_seconds:g} s",
        horizon,
        rate,
        high + spike_rate,
    )


def failure_storm(horizon: float, rate: float = 8.0) -> Trace:
    """Steady load; a dependency is down for the middle third: every attempt then fails."""
    start, end = horizon / 3, 2 * horizon / 3
    return Trace(
        "failure-storm",
        f"steady {rate:g} jobs/s; dependency down from {start / 60:g} to {end / 60:g} min",
        horizon,
        lambda t: rate,
        rate,
        outage=(start, end),
        slow_failures=True,
    )


# Our spec for the latency traces: only a latency target (a backlog target far above the
# concurrency, so the backlog rule alone would run one pod), as in issue 12's reproduction.
LATENCY_ONLY = {"targetWaitSeconds": 10, "targetBacklogPerReplica": 1000}


def latency_steady(horizon: float, rate: float = 20.0) -> Trace:
    """Steady 1 s jobs at one job per pod, and a JobQueue that sets only a latency target."""
    return Trace(
        "latency-steady",
        f"steady Poisson, {rate:g} jobs/s of ~1 s jobs, concurrency 1; ours with only "
        f"targetWaitSeconds {LATENCY_ONLY['targetWaitSeconds']}",
        horizon,
        lambda t: rate,
        rate,
        sigma=0.25,
        cluster={"concurrency": 1},
        ours=LATENCY_ONLY,
        steady=True,
    )


def crashloop(horizon: float, rate: float = 20.0, every: int = 4) -> Trace:
    """latency-steady where every ``every``-th pod crash-loops (never becomes ready)."""
    base = latency_steady(horizon, rate)
    return Trace(
        "crashloop",
        f"{base.description}; every {every}th pod crash-loops",
        horizon,
        base.rate,
        base.rate_max,
        sigma=base.sigma,
        cluster={**base.cluster, "crashloop_every": every},
        ours=base.ours,
        steady=True,
    )


def redis_outage(horizon: float, rate: float = 8.0, seconds: float = 180.0) -> Trace:
    """Steady load; Redis is down for ``seconds`` (longer than the 60 s window) at a third of
    the trace: submits fail, workers take nothing, the operator reads nothing."""
    start = horizon / 3
    return Trace(
        "redis-outage",
        f"steady {rate:g} jobs/s; Redis down {seconds:g} s from {start / 60:g} min (submits fail)",
        horizon,
        lambda t: rate,
        rate,
        redis_outage=(start, start + seconds),
    )


def failover(horizon: float, rate: float = 8.0, seconds: float = 90.0) -> Trace:
    """Steady load; the operator is gone for ``seconds`` (longer than the window: the
    peering lifetime and a restart), then a replica resumes from the JobQueue status."""
    start = horizon / 3
    return Trace(
        "failover",
        f"steady {rate:g} jobs/s; no operator for {seconds:g} s from {start / 60:g} min, then a "
        "new one resumes from the status",
        horizon,
        lambda t: rate,
        rate,
        operator_down=(start, start + seconds),
        steady=True,
    )


def retry_storm(horizon: float, rate: float = 2.0) -> Trace:
    """A dependency down for the middle third; attempts fail fast (connection refused) and
    retry after a long backoff (60 s, doubling; 5 attempts), so most jobs wait in delayed."""
    start, end = horizon / 3, 2 * horizon / 3
    return Trace(
        "retry-storm",
        f"steady {rate:g} jobs/s; dependency down from {start / 60:g} to {end / 60:g} min, "
        "attempts fail in 0.5 s and retry after 60 s, 120 s, ... (5 attempts)",
        horizon,
        lambda t: rate,
        rate,
        outage=(start, end),
        cluster={"failed_attempt_seconds": 0.5, "backoff_base": 60.0, "max_attempts": 5},
    )


def celery_prefetch(horizon: float, rate: float = 0.25, burst_jobs: int = 150,
                    every: float = 1200.0) -> Trace:  # fmt: skip
    """Celery workers as Langflow runs them (one task at a time, the default prefetch of 4):
    each pod takes 4 tasks off the list ahead of its slot, so the list a list-length scaler
    reads stays short or empty while pods are busy (mitodl/ol-infrastructure#5598). A low
    rate of ~20 s tasks plus a burst every ``every`` seconds."""
    burst_seconds = 30.0
    peak = burst_jobs / burst_seconds

    def rate_at(t: float) -> float:
        phase = (t - every / 4) % every
        return rate + (peak if 0 <= phase < burst_seconds and t >= every / 4 else 0.0)

    return Trace(
        "celery-prefetch",
        f"Celery workers, concurrency 1 and prefetch 4: {rate:g} tasks/s of ~20 s plus "
        f"{burst_jobs} in {burst_seconds:g} s every {every / 60:g} min",
        horizon,
        rate_at,
        rate + peak,
        median_seconds=20.0,
        sigma=0.5,
        cluster={"concurrency": 1, "prefetch": 4},
    )


def standard_traces(full: bool) -> list[Trace]:
    scale = 3.0 if full else 1.0
    return [
        poisson(3600 * scale),
        bursts(3600 * scale),
        daily(3 * 3600 * (8.0 if full else 1.0)),
        failure_storm(2700 * scale),
        latency_steady(3600 * scale),
        redis_outage(3600 * scale),
        retry_storm(2700 * scale),
        crashloop(3600 * scale),
        failover(3600 * scale),
        celery_prefetch(3600 * scale),
    ]
