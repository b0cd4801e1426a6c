"""A worker run with a Redis failure in the middle, measured (imported by the failover tests).

``FailoverRun`` starts real ``jobq worker`` processes on a URL, submits jobs one at a time,
calls ``fail`` (the test's failover) once ``fail_after`` submits were acknowledged, keeps
submitting until ``total`` were, then waits for every acknowledged job to finish. A submit
that raised is counted apart (it may or may not have landed) and tried again as a new job.

Measured: acknowledged jobs lost (no record) or never finished, jobs run more than once (each
run is a line in a tally file), and the outage as each side saw it: the longest gap between
two acknowledged submits, and between two job runs (workers), around the failure.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobqueue.client import AsyncQueue
from jobqueue.models import FINISHED_STATES
from jobqueue_operator.sources import SourceUnavailable
from jobqueue_operator.sources.jobqueue import JobQueueSource, RedisPools

HANDLERS = Path(__file__).resolve().parents[1] / "worker"
FINISHED = {state.value for state in FINISHED_STATES}


@dataclass
class Outcome:
    acknowledged: int = 0
    refused: int = 0  # submits that raised (maybe landed, maybe not)
    lost: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    ran_twice: int = 0
    submit_gap: float = 0.0  # longest time without an acknowledged submit
    run_gap: float = 0.0  # longest time without a job starting on a worker
    failover_seconds: float = 0.0  # how long ``fail`` took (until the topology was whole)
    errors: Counter[str] = field(default_factory=Counter)
    # The operator's source polled every 0.25 s: the longest stretch its reads failed (the
    # operator holds the replicas and shows RedisReachable=False meanwhile), and why.
    unreadable: float = 0.0
    read_errors: Counter[str] = field(default_factory=Counter)

    def line(self, topology: str) -> str:
        return (
            f"{topology}: acknowledged {self.acknowledged}, lost {len(self.lost)}, unfinished "
            f"{len(self.unfinished)}, ran twice {self.ran_twice}, refused submits "
            f"{self.refused} {dict(self.errors)}, failover {self.failover_seconds:.1f} s, "
            f"longest pause of submits {self.submit_gap:.1f} s, of job runs {self.run_gap:.1f} s; "
            f"operator reads failed for {self.unreadable:.1f} s {dict(self.read_errors)}"
        )


def longest_gap(moments: list[float]) -> float:
    ordered = sorted(moments)
    return max((b - a for a, b in itertools.pairwise(ordered)), default=0.0)


@dataclass
class FailoverRun:
    url: str  # the workers'
    submit_url: str  # the producer's (may ask for wait_replicas)
    queue: str
    workdir: Path
    workers: int = 2
    total: int = 600
    fail_after: int = 200
    job_seconds: float = 0.01
    lease_seconds: float = 5.0
    procs: list[asyncio.subprocess.Process] = field(default_factory=list)

    async def start_workers(self) -> None:
        path = os.pathsep.join(filter(None, [str(HANDLERS), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "JOBQUEUE_METRICS_PORT": "0", "PYTHONPATH": path}
        for i in range(self.workers):
            with (self.workdir / f"worker{i}.log").open("wb") as log:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "jobqueue.cli", "--redis", self.url, "worker",
                    self.queue, "--handlers", "jq_test_handlers", "--concurrency", "16",
                    "--lease", str(self.lease_seconds), "--name", f"w{i}",
                    env=env, stdout=log, stderr=log,
                )  # fmt: skip
            self.procs.append(proc)

    async def stop_workers(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.terminate()
        await asyncio.gather(*(asyncio.wait_for(p.wait(), 60) for p in self.procs))

    async def run(self, fail: Callable[[], Awaitable[Any]]) -> Outcome:
        tally = self.workdir / "tally.txt"
        tally.touch()
        outcome = Outcome()
        acknowledged: list[str] = []
        acked_at: list[float] = []
        await self.start_workers()
        watching = asyncio.create_task(self._watch_as_the_operator(outcome))
        try:
            async with AsyncQueue(self.queue, self.submit_url) as q:
                failing: asyncio.Task[float] | None = None
                while len(acknowledged) < self.total:
                    if failing is None and len(acknowledged) >= self.fail_after:
                        failing = asyncio.create_task(_timed(fail))
                    if failing is not None and failing.done() and failing.exception():
                        await failing  # the failover itself went wrong: say how
                    try:
                        payload = {"file": str(tally), "sleep": self.job_seconds}
                        job_id = await q.submit("test.tally", payload)
                    except Exception as exc:
                        outcome.refused += 1
                        outcome.errors[type(exc).__name__] += 1
                        await asyncio.sleep(0.05)
                        continue
                    acknowledged.append(job_id)
                    acked_at.append(time.time())
                    await asyncio.sleep(0.005)
                assert failing is not None
                outcome.failover_seconds = await failing
                outcome.acknowledged = len(acknowledged)
                await self._finish(q, acknowledged, outcome)
        finally:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
            await self.stop_workers()
        runs = [line.split() for line in tally.read_text().splitlines()]
        outcome.ran_twice = sum(1 for n in Counter(r[0] for r in runs).values() if n > 1)
        outcome.submit_gap = longest_gap(acked_at)
        outcome.run_gap = longest_gap([float(r[2]) for r in runs])
        return outcome

    async def _watch_as_the_operator(self, outcome: Outcome) -> None:
        """Read the queue as the operator's poll loop does, every 0.25 s."""
        pools = RedisPools()
        source = JobQueueSource(pools, self.url, self.queue)
        failing_since: float | None = None
        try:
            while True:
                try:
                    await source.read()
                except SourceUnavailable as exc:
                    outcome.read_errors[str(exc).split(":")[0]] += 1
                    failing_since = failing_since or time.monotonic()
                else:
                    if failing_since is not None:
                        outcome.unreadable = max(
                            outcome.unreadable, time.monotonic() - failing_since
                        )
                        failing_since = None
                await asyncio.sleep(0.25)
        finally:
            await source.close()

    async def _finish(self, q: AsyncQueue, ids: list[str], outcome: Outcome) -> None:
        """Wait until every acknowledged job finished (at most 120 s); note the rest."""
        deadline = time.monotonic() + 120
        while True:
            try:
                states = await q.protocol.states(ids)
            except Exception:  # Redis may still be settling
                await asyncio.sleep(0.2)
                continue
            missing = [i for i, s in zip(ids, states, strict=True) if s is None]
            running = [i for i, s in zip(ids, states, strict=True) if s and s not in FINISHED]
            dead = [p.returncode for p in self.procs if p.returncode is not None]
            assert not dead, f"workers exited with {dead} (see {self.workdir}/worker*.log)"
            if not running or time.monotonic() > deadline:
                outcome.lost, outcome.unfinished = missing, running
                return
            await asyncio.sleep(0.2)


async def _timed(fail: Callable[[], Awaitable[Any]]) -> float:
    started = time.monotonic()
    await fail()
    return time.monotonic() - started
