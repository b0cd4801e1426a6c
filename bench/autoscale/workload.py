"""Workloads: arrival traces and heavy-tailed job durations, generated from a seed.

A trace is a rate function (jobs/s over time) plus an optional outage window of a dependency
(the failure storm). Arrivals are an inhomogeneous Poisson process drawn by thinning.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Trace:
    name: str
    description: str
    horizon: float  # seconds of arrivals
    rate: Callable[[float], float]  # jobs/s at time t
    rate_max: float  # an upper bound of rate(), for thinning
    outage: tuple[float, float] | None = None  # [start, end): every attempt started inside fails


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
    return Workload(trace, times, durations(rng, len(times)))


def poisson(horizon: float, rate: float = 8.0) -> Trace:
    return Trace("poisson", f"steady Poisson, {rate:g} jobs/s", horizon, lambda t: rate, rate)


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
    )


def standard_traces(full: bool) -> list[Trace]:
    scale = 3.0 if full else 1.0
    return [
        poisson(3600 * scale),
        bursts(3600 * scale),
        daily(3 * 3600 * (8.0 if full else 1.0)),
        failure_storm(2700 * scale),
    ]
