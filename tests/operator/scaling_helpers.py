"""Helpers of the scaling tests: metrics, decision sequences, and a small fluid queue that
answers decide() the way a queue under a constant load would (pure, deterministic)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from jobqueue_operator.scaling import (
    Decision,
    Policy,
    QueueMetrics,
    Replicas,
    ScalingState,
    decide,
)


def m(
    queued: int = 0,
    active: int = 0,
    due: int = 0,
    wait: float = 0.0,
    ok: int = 0,
    failed: int = 0,
    delayed: int = 0,
) -> QueueMetrics:
    return QueueMetrics(
        queued=queued,
        active=active,
        delayed=delayed,
        delayed_due=due,
        oldest_wait_seconds=wait,
        attempts_succeeded=ok,
        attempts_failed=failed,
    )


def run_sequence(
    policy: Policy,
    steps: Sequence[tuple[float, QueueMetrics | None]],
    start: int,
    state: ScalingState | None = None,
) -> list[Decision]:
    """Feed decisions back as the current count (all pods ready), as the operator does."""
    state, current, out = state or ScalingState(), start, []
    for now, metrics in steps:
        decision = decide(metrics, Replicas(current, current), policy, state, now)
        state, current = decision.state, decision.desired
        out.append(decision)
    return out


def polls(start: float, end: float, every: float = 2.0) -> Iterable[float]:
    t = start
    while t < end:
        yield t
        t += every


@dataclass
class FluidQueue:
    """A queue under a constant load, as a fluid: ``rate`` jobs/s of ``seconds`` each,
    ``per_pod`` at a time per ready pod; pods are ready ``start_seconds`` after they are
    asked for (every ``crashloop``-th never). ``noise`` multiplies the running count read
    at each poll in turn (the arrival process and the job durations are not smooth)."""

    rate: float
    seconds: float
    per_pod: int
    start_seconds: float = 15.0
    crashloop: int = 0
    noise: Sequence[float] = (1.0,)
    queued: float = 0.0
    wait: float = 0.0  # age of the oldest queued job
    pods: list[float] = field(default_factory=list)  # when each pod is (or was) ready
    made: int = 0
    reads: int = 0

    def replicas(self, now: float) -> Replicas:
        return Replicas(len(self.pods), sum(1 for t in self.pods if t <= now))

    def scale(self, desired: int, now: float) -> None:
        while len(self.pods) < desired:
            self.made += 1
            broken = self.crashloop and self.made % self.crashloop == 0
            self.pods.append(math.inf if broken else now + self.start_seconds)
        if len(self.pods) > desired:  # the ReplicaSet removes pods that are not ready first
            self.pods.sort()
            del self.pods[desired:]

    def advance(self, dt: float, now: float) -> None:
        slots = self.replicas(now).ready * self.per_pod
        served = slots / self.seconds  # jobs/s the ready pods can finish
        if self.queued > 0 or self.rate > served:
            self.queued = max(0.0, self.queued + (self.rate - served) * dt)
            self.wait = self.wait + dt if self.queued else 0.0
            # FIFO: the head has waited at most as long as the queue takes to drain
            if served > 0 and self.queued:
                self.wait = min(self.wait, self.queued / served)
        else:
            self.wait = 0.0

    def read(self, now: float) -> QueueMetrics:
        slots = self.replicas(now).ready * self.per_pod
        busy = slots if self.queued > 0 else min(slots, self.rate * self.seconds)
        factor = self.noise[self.reads % len(self.noise)]
        self.reads += 1
        active = min(slots, math.ceil(busy * factor - 1e-9))  # a busy pod holds one at least
        return m(queued=round(self.queued), active=active, wait=self.wait)


def drive(
    policy: Policy, load: FluidQueue, seconds: float, every: float = 2.0
) -> list[tuple[float, Decision]]:
    """Poll ``load`` every ``every`` seconds for ``seconds`` and act on each decision."""
    state, out = ScalingState(), []
    for now in polls(0.0, seconds, every):
        load.advance(every, now)
        decision = decide(load.read(now), load.replicas(now), policy, state, now)
        state = decision.state
        load.scale(decision.desired, now)
        out.append((now, decision))
    return out
