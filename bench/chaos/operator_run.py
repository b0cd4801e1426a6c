"""Run 3: the operator under faults, on the local cluster (hack/localcluster: a real
kube-apiserver and a real node; worker pods are containers of the worker image, see
``cluster.py``).

- Bursts of jobs land in the queue; a few seconds into each burst the operator is
  SIGKILLed and a new one started (it acts once the killed one's Lease has lapsed).
- Two replicas, one leading, one standing by (the Lease): the leader is SIGKILLed as a
  burst lands and the standby takes over (``failover.py``).
- With the workers busy at their maximum, the Redis that the operator and the workers use
  is SIGSTOPped for ``outage`` seconds (connections hang: unreachable, not refused), then
  resumed.

Figures: jobs submitted / completed / lost, runs per job (the tally of ``handlers.py``, as in
run 1; stale results accepted must be 0), per kill the replicas at the kill and while no
operator led, and the time until the new operator held the Lease (with a standby: and until
its first scale decision); the replicas before and during the outage (held: the operator
must not scale on what it cannot read) and the time from the end of the outage until every
job had finished.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from jobqueue.client import AsyncQueue

from bench.chaos import failover, tally
from bench.chaos.cluster import (
    GROUP,
    NAMESPACE,
    PLURAL,
    VERSION,
    ChaosCluster,
    Operator,
    Replicas,
    manifest,
    wait,
    with_cluster,
)
from bench.redisserver import RedisProcess

QUEUE = "burst"


@dataclass(frozen=True)
class Plan:
    bursts: int = 4
    burst_jobs: int = 60
    job_seconds: float = 2.0
    kill_after: float = 3.0  # seconds into a burst
    failovers: int = 3  # SIGKILLs of the leader with a standby ready
    outage: float = 60.0
    outage_job_seconds: float = 20.0
    max_replicas: int = 4
    concurrency: int = 4
    grace: int = 10  # terminationGracePeriodSeconds of the worker pods
    deadline: float = 1200.0


FULL = Plan()
QUICK = Plan(bursts=2, burst_jobs=24, failovers=1, outage=20.0, outage_job_seconds=10.0,
             deadline=600.0)  # fmt: skip


def run(plan: Plan, workdir: Path | None = None) -> dict[str, Any]:
    return with_cluster(partial(_attack, plan), workdir)


async def _attack(
    plan: Plan, cluster: ChaosCluster, server: RedisProcess, url: str, env: dict[str, str],
    base: Path,
) -> dict[str, Any]:  # fmt: skip
    until = time.monotonic() + plan.deadline
    tally_dir = base / "tally"
    tally_dir.mkdir(exist_ok=True)
    operators = [Operator(env, base, "a"), Operator(env, base, "b")]
    operator = operators[0]
    operator.start()
    body = manifest(QUEUE, url, tally_dir, plan.concurrency, plan.max_replicas, plan.grace)
    cluster.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)

    def read() -> int:
        dep = cluster.apps.read_namespaced_deployment(f"{QUEUE}-worker", NAMESPACE)
        return int(dep.spec.replicas or 0)

    replicas = Replicas(read)
    sampler = threading.Thread(target=replicas.sample_forever, daemon=True)
    sampler.start()
    client = aioredis.Redis.from_url(url, decode_responses=True)
    q = AsyncQueue(QUEUE, redis=client)
    ids: list[str] = []
    kills: list[dict[str, Any]] = []

    async def burst_done() -> bool:
        snap = await q.protocol.stats(60)
        return snap.queued + snap.active + snap.delayed == 0

    try:
        await wait("the worker Deployment exists", lambda: read() == 0, until)
        for _ in range(plan.bursts):
            burst_at = time.time()
            job = {"name": "chaos.run", "payload": {"ms": plan.job_seconds * 1000}}
            ids += await q.submit_many([job] * plan.burst_jobs)
            await asyncio.sleep(plan.kill_after)
            at_kill = replicas.last()
            operator.kill()
            killed = time.time()
            operator.start()
            await wait("the new operator holds the Lease", operator.leads, until)
            held = time.time()
            await wait("the burst is done", burst_done, until, 0.5)
            kills.append({
                "replicas_at_kill": at_kill,
                "replicas_without_operator": sorted(set(replicas.between(killed, held))),
                "lease_held_after_kill": round(held - killed, 1),
                "replicas_max_in_burst": max(replicas.between(burst_at, time.time()), default=0),
                "burst_seconds": round(time.time() - burst_at, 1),
            })  # fmt: skip
        takeovers = await failover.run(
            failover.Setup(q, replicas, operators, plan.concurrency, plan.burst_jobs,
                           plan.job_seconds, until),
            plan.failovers, ids,
        )  # fmt: skip
        outage = await _outage(plan, q, server, replicas, until, ids)
        records = dict(zip(ids, await q.protocol.get_many_fields(ids), strict=True))
    finally:
        replicas.stop.set()
        sampler.join(timeout=5)
        await client.aclose()
        for op in operators:
            op.kill()
    deployments = cluster.apps.list_namespaced_deployment(NAMESPACE).items
    return {
        "plan": asdict(plan),
        "worker_pods": f"containers of {cluster.worker_image}",
        "operator_kills": len(kills),
        "failovers": kills,
        "standby_takeovers": takeovers,
        "outage": outage,
        "deployments": len(deployments),
        "figures": tally.account(ids, records, tally.read_runs(tally_dir), tally.LogFacts(), {}),
        "max_replicas_seen": max((r for _, r in replicas.samples), default=0),
    }


async def _outage(
    plan: Plan, q: AsyncQueue, server: RedisProcess, replicas: Replicas, until: float,
    ids: list[str],
) -> dict[str, Any]:  # fmt: skip
    """Workers busy at full size; Redis frozen for ``plan.outage`` s; then every job must end."""
    job = {"name": "chaos.run", "payload": {"ms": plan.outage_job_seconds * 1000}}
    batch = await q.submit_many([job] * (plan.max_replicas * plan.concurrency))
    ids += batch
    await wait("the workers are at their maximum",
                lambda: replicas.last() == plan.max_replicas, until)  # fmt: skip
    assert server.proc is not None
    before = replicas.last()
    server.proc.send_signal(signal.SIGSTOP)
    stopped = time.time()
    try:
        await asyncio.sleep(plan.outage)
    finally:
        server.proc.send_signal(signal.SIGCONT)
    resumed = time.time()
    during = replicas.between(stopped, resumed)

    async def done() -> bool:
        fields = await q.protocol.get_many_fields(batch)
        return all(f.get("state") in tally.TERMINAL for f in fields)

    await wait("every job of the outage finished", done, until, 0.5)
    return {
        "seconds": round(resumed - stopped, 1),
        "replicas_before": before,
        "replicas_during_min": min(during, default=None),
        "replicas_during_max": max(during, default=None),
        "samples_during": len(during),
        "all_finished_after_seconds": round(time.time() - resumed, 1),
    }
