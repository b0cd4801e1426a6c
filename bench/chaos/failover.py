"""Run 3b: SIGKILL of the leading operator replica while a standby waits (the Lease).

Two replicas run; one leads. Each round first brings the worker Deployment to one replica
(``concurrency`` long jobs keep one pod busy), then SIGKILLs the leader and lands a burst at
once: the burst wants every replica, but nobody leads until the standby takes the Lease
(after it lapses: the killed leader could not release it). The killed replica is started
again and stands by for the next round, so the roles alternate.

Figures per round: the replicas at the kill and while nobody led (held: nothing scales
without a leader), the time from the kill to the standby holding the Lease and to the first
scale decision it made (the Deployment's spec.replicas moving off its value at the kill).
Jobs lost and run twice are counted with the rest of run 3.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from jobqueue.client import AsyncQueue

from bench.chaos.cluster import STANDS_BY, Operator, Replicas, wait


@dataclass(frozen=True)
class Setup:
    q: AsyncQueue
    replicas: Replicas
    operators: list[Operator]  # two replicas; the first one may be running and leading
    concurrency: int
    burst_jobs: int
    job_seconds: float
    until: float  # time.monotonic() deadline


async def run(setup: Setup, rounds: int, ids: list[str]) -> list[dict[str, Any]]:
    """``rounds`` takeovers; the jobs submitted are appended to ``ids``."""
    ops, until = setup.operators, setup.until
    for op in ops:
        if op.proc is None or op.proc.poll() is not None:
            op.start()
    await wait("one replica leading", lambda: any(op.leads() for op in ops), until)
    await wait("the other standing by", lambda: all(op.leads() or op.said(STANDS_BY)
                                                    for op in ops), until)  # fmt: skip
    rounds_out: list[dict[str, Any]] = []
    for _ in range(rounds):
        rounds_out.append(await _round(setup, ids))
    return rounds_out


async def _round(setup: Setup, ids: list[str]) -> dict[str, Any]:
    ops, q, replicas, until = setup.operators, setup.q, setup.replicas, setup.until
    # Long enough to keep one pod busy from before the kill until after the takeover.
    hold = {"name": "chaos.run", "payload": {"ms": 45_000}}
    burst = {"name": "chaos.run", "payload": {"ms": setup.job_seconds * 1000}}

    async def idle() -> bool:
        snap = await q.protocol.stats(60)
        return snap.queued + snap.active + snap.delayed == 0

    await wait("the queue idle", idle, until, 0.5)
    ids += await q.submit_many([hold] * setup.concurrency)
    await wait("one worker replica", lambda: replicas.last() == 1, until)
    leader = next(op for op in ops if op.leads())
    standby = next(op for op in ops if op is not leader)
    at_kill = replicas.last()
    leader.kill()
    killed = time.time()
    ids += await q.submit_many([burst] * setup.burst_jobs)
    await wait("the standby holding the Lease", standby.leads, until, 0.1)
    led = time.time()

    def decided() -> float | None:
        return replicas.first_change_after(killed, at_kill)

    await wait("a scale decision of the new leader", decided, until)
    leader.start()  # the killed replica comes back as the standby
    await wait("the restarted replica standing by", lambda: leader.said(STANDS_BY), until)
    return {
        "replicas_at_kill": at_kill,
        "replicas_without_leader": sorted(set(replicas.between(killed, led))),
        "standby_led_after": round(led - killed, 1),
        "first_scale_decision_after": round((decided() or led) - killed, 1),
        "replicas_after_decision": replicas.last(),
    }
