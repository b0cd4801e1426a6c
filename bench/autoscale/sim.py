"""Discrete-event simulation of a worker Deployment driven by a scaling policy.

Jobs arrive on a trace and wait in one FIFO queue; ready pods each run up to `concurrency`
jobs. A policy ticks on its interval and sets the replica count; new pods become ready after
`pod_start_seconds`; removed pods stop taking jobs, drain for the policy's grace period, then
cut what is still running (the cut job is queued again after the policy's requeue delay).
While the trace's dependency is down, every attempt fails after `failed_attempt_seconds`
and is retried with exponential backoff until `max_attempts`, then dead-lettered. While Redis
is down, workers take nothing and the policy reads nothing (it must hold); while the operator
is down, the policy does not tick, then resumes (ours from what its status kept). A trace may
make every n-th pod crash-loop: it is created but never becomes ready.

With ``prefetch`` (Celery's worker_prefetch_multiplier), every ready pod also takes up to
concurrency x prefetch jobs off the list ahead of its free slots and holds them: they are no
longer in the list a list-length scaler reads, though no one runs them. A leaving pod gives
its held jobs back at once (Celery's warm shutdown restores them).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from bench.autoscale.policies import Observation, ScalingPolicy
from bench.autoscale.workload import Workload


@dataclass(frozen=True)
class Cluster:
    concurrency: int = 4  # jobs per pod (the JobQueue default)
    pod_start_seconds: float = 15.0  # schedule, pull (cached), start, connect
    max_attempts: int = 3
    backoff_base: float = 5.0  # exponential: 5 s, 10 s, ...
    failed_attempt_seconds: float = 10.0  # a call to the dead dependency times out
    tail_seconds: float = 1800.0  # simulated time after the last arrival
    sample_every: float = 10.0
    crashloop_every: int = 0  # every n-th pod never becomes ready (0: none)
    prefetch: int = 0  # jobs a pod holds ahead per slot (Celery's prefetch multiplier)
    warmup_seconds: float = 600.0  # scale events before this do not count as settling


@dataclass
class Pod:
    id: int
    created: float
    ready_at: float
    ready: bool = False
    leaving: bool = False
    running: dict[int, int] = field(default_factory=dict)  # job -> attempt token
    held: deque[int] = field(default_factory=deque)  # prefetched, not started


@dataclass
class Result:
    policy: str
    trace: str
    jobs: int
    completed: int
    dead_lettered: int
    never_started: int
    wait_p50: float
    wait_p95: float
    wait_p99: float
    wait_max: float
    replica_seconds: float
    max_replicas: int
    killed_by_scale_down: int
    failed_attempts: int
    samples: dict[str, list[float]]
    # Replica changes per hour of arrivals after the warm-up (settling), and in all.
    scale_events_per_hour: float = 0.0
    scale_events: int = 0
    # With trouble (an outage of a dependency, of Redis, of the operator): pods (and ready
    # pods) at its start, and the most of each while it lasts.
    pods_at_trouble: int | None = None
    ready_at_trouble: int | None = None
    peak_pods_in_trouble: int | None = None
    peak_ready_in_trouble: int | None = None
    # Arrival to successful end; None = never (dead-lettered or unfinished at the end).
    done_p50: float | None = None
    done_p95: float | None = None
    done_p99: float | None = None
    # With an outage: the same figures for jobs that arrived before, during, after it.
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out.pop("samples")
        return out


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


def finite_or_none(value: float) -> float | None:
    """JSON has no infinity: a percentile that lands on a never-finished job is None."""
    return value if value < math.inf else None


def phase_of(arrival: float, outage: tuple[float, float]) -> str:
    if arrival < outage[0]:
        return "before"
    return "during" if arrival < outage[1] else "after"


# event kinds, in tie-break order at equal times
_DONE, _READY, _DUE, _DEADLINE, _TICK, _SAMPLE, _RESUME = range(7)
_TROUBLE = -1  # first at its time: the fleet as the trouble found it


class Simulation:
    def __init__(self, workload: Workload, policy: ScalingPolicy, cluster: Cluster) -> None:
        self.w = workload
        self.policy = policy
        self.c = cluster
        self.end = workload.trace.horizon + cluster.tail_seconds
        n = len(workload.arrivals)
        self.first_start = [math.inf] * n
        self.succeeded_at = [math.inf] * n
        self.attempts = [0] * n
        self.ready_since = [0.0] * n
        self.queue: deque[int] = deque()
        self.slots: deque[int] = deque()  # one entry per free slot of a ready pod
        self.pods: dict[int, Pod] = {}
        self.replicas = 0  # the Deployment's spec.replicas
        self.events: list[tuple[float, int, int, Any]] = []
        self.seq = itertools.count()
        self.pod_ids = itertools.count()
        self.token = itertools.count()
        self.outcomes: deque[tuple[float, bool]] = deque()
        self.delayed = 0
        self.prefetched = 0  # jobs held by pods (Cluster.prefetch), out of the list
        self.active = 0
        self.completed = 0
        self.dead = 0
        self.killed = 0
        self.failed_attempts = 0
        self.replica_seconds = 0.0
        self.last_t = 0.0
        self.peak = 0
        self.samples: dict[str, list[float]] = {
            k: [] for k in ("t", "queued", "active", "replicas", "pods")
        }
        self.scaled_at: list[float] = []
        self.resumed = False
        # pods at the trouble's start, then the most pods and ready pods while it lasts
        self.trouble: list[int] = []

    # -- plumbing --------------------------------------------------------------------------
    def _at(self, t: float, kind: int, data: Any = None) -> None:
        heapq.heappush(self.events, (t, kind, next(self.seq), data))

    def _advance(self, t: float) -> None:
        t = min(t, self.end)
        if t > self.last_t:
            self.replica_seconds += len(self.pods) * (t - self.last_t)
            self.last_t = t

    def _in_outage(self, t: float) -> bool:
        outage = self.w.trace.outage
        return outage is not None and outage[0] <= t < outage[1]

    def _in(self, span: tuple[float, float] | None, t: float) -> bool:
        return span is not None and span[0] <= t < span[1]

    # -- jobs ------------------------------------------------------------------------------
    def _enqueue(self, job: int, t: float) -> None:
        self.ready_since[job] = t
        self.queue.append(job)

    def _dispatch(self, t: float) -> None:
        if self._in(self.w.trace.redis_outage, t):
            return  # workers cannot take jobs; dispatch resumes at the end (_RESUME)
        if self.c.prefetch:
            self._dispatch_prefetching(t)
            return
        while self.queue and self.slots:
            pod = self.pods.get(self.slots.popleft())
            if pod is None or pod.leaving:
                continue
            self._start(t, pod, self.queue.popleft())

    def _dispatch_prefetching(self, t: float) -> None:
        """Free slots run their pod's held jobs first, then the list's; then every ready pod
        fills its hold from the list (the first ready pods the most, as BRPOP serves)."""
        idle: list[int] = []
        while self.slots:
            pod = self.pods.get(self.slots.popleft())
            if pod is None or pod.leaving:
                continue
            if pod.held:
                self.prefetched -= 1
                self._start(t, pod, pod.held.popleft())
            elif self.queue:
                self._start(t, pod, self.queue.popleft())
            else:
                idle.append(pod.id)
        self.slots.extend(idle)
        room = self.c.concurrency * self.c.prefetch
        for pod in self.pods.values():
            while self.queue and pod.ready and not pod.leaving and len(pod.held) < room:
                pod.held.append(self.queue.popleft())
                self.prefetched += 1

    def _start(self, t: float, pod: Pod, job: int) -> None:
        self.attempts[job] += 1
        self.first_start[job] = min(self.first_start[job], t)
        token = next(self.token)
        pod.running[job] = token
        self.active += 1
        fails = self._in_outage(t)
        took = self.c.failed_attempt_seconds if fails else self.w.durations[job]
        self._at(t + took, _DONE, (pod.id, job, token, fails))

    def _done(self, t: float, pod_id: int, job: int, token: int, failed: bool) -> None:
        pod = self.pods.get(pod_id)
        if pod is None or pod.running.get(job) != token:
            return  # the attempt was cut by a scale-down
        del pod.running[job]
        self.active -= 1
        self.outcomes.append((t, not failed))
        if failed:
            self.failed_attempts += 1
            if self.attempts[job] >= self.c.max_attempts:
                self.dead += 1
            else:
                self.delayed += 1
                self._at(t + self.c.backoff_base * 2 ** (self.attempts[job] - 1), _DUE, job)
        else:
            self.completed += 1
            self.succeeded_at[job] = t
        if pod.leaving:
            if not pod.running:
                self._remove(t, pod)
        else:
            self.slots.append(pod.id)

    # -- pods ------------------------------------------------------------------------------
    def _scale(self, t: float, desired: int) -> None:
        current = [p for p in self.pods.values() if not p.leaving]
        self.replicas = desired
        if desired > len(current):
            for _ in range(desired - len(current)):
                pod = Pod(next(self.pod_ids), t, t + self.c.pod_start_seconds)
                self.pods[pod.id] = pod
                every = self.c.crashloop_every
                if not every or pod.id % every != every - 1:
                    self._at(pod.ready_at, _READY, pod.id)
        elif desired < len(current):
            for pod in self._victims(current, len(current) - desired):
                pod.leaving = True
                self.prefetched -= len(pod.held)
                self.queue.extendleft(reversed(pod.held))  # given back, first in line
                pod.held.clear()
                if not pod.running:
                    self._remove(t, pod)
                else:
                    self._at(t + self.policy.drain_seconds, _DEADLINE, pod.id)
        self.peak = max(self.peak, len(self.pods))

    def _victims(self, pods: list[Pod], k: int) -> list[Pod]:
        def rank(p: Pod) -> tuple[Any, ...]:
            if self.policy.victim_order == "least_busy":
                return (p.ready, len(p.running), -p.ready_at)
            return (p.ready, -p.ready_at)  # ReplicaSet: not ready first, then newest ready

        return sorted(pods, key=rank)[:k]

    def _remove(self, t: float, pod: Pod) -> None:
        self._advance(t)
        self.pods.pop(pod.id, None)

    def _deadline(self, t: float, pod_id: int) -> None:
        pod = self.pods.get(pod_id)
        if pod is None:
            return
        for job in list(pod.running):
            self.killed += 1
            self.active -= 1
            self._at(t + self.policy.requeue_delay, _DUE, ("cut", job))
        pod.running.clear()
        self._remove(t, pod)

    # -- the policy --------------------------------------------------------------------------
    def _observe(self, t: float) -> Observation:
        if self._in(self.w.trace.redis_outage, t):
            ready = sum(1 for p in self.pods.values() if p.ready and not p.leaving)
            return Observation(t, 0, 0, 0, 0.0, 0, 0, self.replicas, ready, readable=False)
        horizon = t - self.policy.failure_window
        while self.outcomes and self.outcomes[0][0] <= horizon:
            self.outcomes.popleft()
        ok = sum(1 for _, success in self.outcomes if success)
        oldest = t - self.ready_since[self.queue[0]] if self.queue else 0.0
        return Observation(
            now=t,
            queued=len(self.queue),
            active=self.active,
            delayed=self.delayed,
            oldest_wait=oldest,
            prefetched=self.prefetched,
            succeeded=ok,
            failed=len(self.outcomes) - ok,
            replicas=self.replicas,
            ready=sum(1 for p in self.pods.values() if p.ready and not p.leaving),
        )

    # -- main loop ---------------------------------------------------------------------------
    def run(self) -> Result:
        self._scale(0.0, self.policy.initial_replicas())
        for pod in self.pods.values():  # a fleet that exists at the start is already up
            pod.ready_at, pod.ready = 0.0, True
            self.slots.extend([pod.id] * self.c.concurrency)
        if self.policy.interval > 0:
            self._at(self.policy.interval, _TICK)
        self._at(0.0, _SAMPLE)
        if self.w.trace.redis_outage is not None:
            self._at(self.w.trace.redis_outage[1], _RESUME)
        if self.w.trace.trouble is not None:
            self._at(self.w.trace.trouble[0], _TROUBLE)
        arrivals = self.w.arrivals
        next_job = 0
        while True:
            next_event = self.events[0][0] if self.events else math.inf
            if next_job < len(arrivals) and arrivals[next_job] <= next_event:
                t = arrivals[next_job]
                self._advance(t)
                self._enqueue(next_job, t)
                next_job += 1
                self._dispatch(t)
                continue
            if next_event > self.end:
                break
            t, kind, _, data = heapq.heappop(self.events)
            self._advance(t)
            if kind == _DONE:
                self._done(t, *data)
            elif kind == _READY:
                started = self.pods.get(data)
                if started is not None and not started.leaving and not started.ready:
                    started.ready = True
                    self.slots.extend([started.id] * self.c.concurrency)
                    self._note_trouble(t)
            elif kind == _DUE:
                if isinstance(data, tuple):
                    self._enqueue(data[1], t)  # a cut job, back after stall detection
                else:
                    self.delayed -= 1
                    self._enqueue(data, t)
            elif kind == _DEADLINE:
                self._deadline(t, data)
            elif kind == _TICK:
                down = self.w.trace.operator_down
                if self._in(down, t):
                    pass  # no operator: nothing decides
                else:
                    if down is not None and down[1] <= t and not self.resumed:
                        self.resumed = True
                        self.policy.resume()
                    desired = self.policy.tick(self._observe(t))
                    if desired != self.replicas:
                        self.scaled_at.append(t)
                        self._scale(t, desired)
                        self._note_trouble(t)
                self._at(t + self.policy.interval, _TICK)
            elif kind == _SAMPLE:
                self._sample(t)
                self._at(t + self.c.sample_every, _SAMPLE)
            elif kind == _TROUBLE:
                self._note_trouble(t)
            self._dispatch(t)
        self._advance(self.end)
        return self._result()

    def _note_trouble(self, t: float) -> None:
        """Pods at the trouble's start and the peaks while it lasts."""
        if not self._in(self.w.trace.trouble, t):
            return
        pods = len(self.pods)
        ready = sum(1 for p in self.pods.values() if p.ready and not p.leaving)
        if not self.trouble:
            self.trouble = [pods, pods, ready, ready]
        self.trouble[1] = max(self.trouble[1], pods)
        self.trouble[2] = max(self.trouble[2], ready)

    def _sample(self, t: float) -> None:
        s = self.samples
        s["t"].append(t)
        s["queued"].append(len(self.queue) + self.prefetched + self.delayed)
        s["active"].append(self.active)
        s["replicas"].append(self.replicas)
        s["pods"].append(len(self.pods))

    def _waits(self, jobs: range | list[int]) -> tuple[list[float], list[float]]:
        """Sorted waits (never started: up to the end) and times to success (never: inf)."""
        arrivals = self.w.arrivals
        waits = sorted(min(self.first_start[j], self.end) - arrivals[j] for j in jobs)
        done = sorted(self.succeeded_at[j] - arrivals[j] for j in jobs)
        return waits, done

    def _phases(self) -> dict[str, dict[str, Any]]:
        outage = self.w.trace.outage
        if outage is None:
            return {}
        groups: dict[str, list[int]] = {"before": [], "during": [], "after": []}
        for job, arrival in enumerate(self.w.arrivals):
            groups[phase_of(arrival, outage)].append(job)
        out = {}
        for name, jobs in groups.items():
            waits, done = self._waits(jobs)
            out[name] = {
                "jobs": len(jobs),
                "wait_p50": percentile(waits, 0.50),
                "wait_p95": percentile(waits, 0.95),
                "done_p50": finite_or_none(percentile(done, 0.50)),
                "done_p95": finite_or_none(percentile(done, 0.95)),
                "never_succeeded": sum(1 for d in done if d == math.inf),
            }
        return out

    def _result(self) -> Result:
        waits, done = self._waits(range(len(self.w.arrivals)))
        return Result(
            policy=self.policy.name,
            trace=self.w.trace.name,
            jobs=len(self.w.arrivals),
            completed=self.completed,
            dead_lettered=self.dead,
            never_started=sum(1 for s in self.first_start if s == math.inf),
            wait_p50=percentile(waits, 0.50),
            wait_p95=percentile(waits, 0.95),
            wait_p99=percentile(waits, 0.99),
            wait_max=waits[-1] if waits else 0.0,
            replica_seconds=self.replica_seconds,
            max_replicas=self.peak,
            killed_by_scale_down=self.killed,
            failed_attempts=self.failed_attempts,
            samples=self.samples,
            done_p50=finite_or_none(percentile(done, 0.50)),
            done_p95=finite_or_none(percentile(done, 0.95)),
            done_p99=finite_or_none(percentile(done, 0.99)),
            phases=self._phases(),
            scale_events_per_hour=self._settling_events_per_hour(),
            scale_events=len(self.scaled_at),
            pods_at_trouble=self.trouble[0] if self.trouble else None,
            ready_at_trouble=self.trouble[3] if self.trouble else None,
            peak_pods_in_trouble=self.trouble[1] if self.trouble else None,
            peak_ready_in_trouble=self.trouble[2] if self.trouble else None,
        )

    def _settling_events_per_hour(self) -> float:
        """Replica changes per hour between the warm-up and the last arrival."""
        start, end = self.c.warmup_seconds, self.w.trace.horizon
        if end <= start:
            return 0.0
        events = sum(1 for t in self.scaled_at if start <= t < end)
        return events * 3600.0 / (end - start)


def simulate(workload: Workload, policy: ScalingPolicy, cluster: Cluster | None = None) -> Result:
    return Simulation(workload, policy, cluster or Cluster()).run()
