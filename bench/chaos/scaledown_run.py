"""Run 5: scale-downs of busy worker pods running long jobs, on the local cluster.

One JobQueue, one job per pod (concurrency 1). Each cycle holds the Deployment at ``pods``
replicas (minReplicas = maxReplicas) until every pod is ready, fills every pod with a long
job, waits until every pod is running one, then sets minReplicas 0 and halves maxReplicas:
the operator scales the Deployment down and the pods it removes are busy. They get SIGTERM
and their grace period (longer than a job); a pod's worker stops taking jobs and finishes
what it holds. The next cycle starts once the removed pods are gone, until ``scale_downs``
busy pods were removed.

Figures: busy pods removed, jobs killed by scale-down (a run whose handler never returned:
must be 0), jobs run more than once, jobs completed / lost, and per cycle how long the
removed pods took to go.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from jobqueue.client import AsyncQueue
from jobqueue.models import WorkerInfo

from bench.chaos import tally
from bench.chaos.cluster import (
    GROUP,
    NAMESPACE,
    PLURAL,
    VERSION,
    ChaosCluster,
    Operator,
    manifest,
    wait,
    with_cluster,
)
from bench.redisserver import RedisProcess

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"

QUEUE = "drain"


@dataclass(frozen=True)
class Plan:
    scale_downs: int = 20
    pods: int = 4
    job_seconds: float = 20.0  # outlasts the registry's report of a busy pod (10 s at most)
    grace: int = 60  # seconds; longer than a job
    deadline: float = 900.0


FULL = Plan()
QUICK = Plan(scale_downs=4, job_seconds=15.0, deadline=400.0)


def run(plan: Plan, workdir: Path | None = None) -> dict[str, Any]:
    return with_cluster(partial(_attack, plan), workdir)


def _in_flight(runs: dict[str, list[tally.Run]], ids: list[str]) -> dict[str, str]:
    """Pod -> job for the runs of ``ids`` whose handler has not returned yet."""
    busy: dict[str, str] = {}
    for job_id in ids:
        for r in runs.get(job_id, []):
            ended = any(e.mark in "EF" and e.token == r.token for e in runs[job_id])
            if r.mark == "S" and not ended:
                busy[r.worker] = job_id
    return busy


def _ended_after(
    runs: dict[str, list[tally.Run]], ids: list[str], pods: set[str], since: float
) -> int:
    """Runs on ``pods`` whose handler returned after ``since`` (the SIGTERM): a pod removed
    by the scale-down finished the job it held."""
    return sum(1 for j in ids for r in runs.get(j, []) if r.mark == "E" and r.worker in pods
               and r.at >= since)  # fmt: skip


def _worker_pids(tally_dir: Path, pods: set[str]) -> set[int]:
    """The worker's PID in each removed pod's container (the tally files are named
    ``<pod>-<pid>.tally``): 1 when `jobq worker` is the container's PID 1 and gets the
    kubelet's SIGTERM itself."""
    found = set()
    for path in tally_dir.glob("*.tally"):
        pod, _, pid = path.stem.rpartition("-")
        if pod in pods:
            found.add(int(pid))
    return found


async def _attack(
    plan: Plan, cluster: ChaosCluster, server: RedisProcess, url: str, env: dict[str, str],
    base: Path,
) -> dict[str, Any]:  # fmt: skip
    operator = Operator(env, base)
    operator.start()
    try:
        return await _cycles(plan, cluster, url, base)
    finally:
        operator.kill()


async def _cycles(plan: Plan, cluster: ChaosCluster, url: str, base: Path) -> dict[str, Any]:
    until = time.monotonic() + plan.deadline
    tally_dir = base / "tally"
    tally_dir.mkdir(exist_ok=True)
    body = manifest(QUEUE, url, tally_dir, 1, plan.pods, plan.grace)
    cluster.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)

    def replicas() -> int:
        dep = cluster.apps.read_namespaced_deployment(f"{QUEUE}-worker", NAMESPACE)
        return int(dep.spec.replicas or 0)

    restarts: dict[str, int] = {}  # container restarts seen per pod (failed liveness probes)

    def pod_list() -> list[Any]:
        listed = [p for p in cluster.core.list_namespaced_pod(NAMESPACE).items
                  if p.metadata.name.startswith(f"{QUEUE}-worker")]  # fmt: skip
        for p in listed:
            count = sum(c.restart_count for c in (p.status.container_statuses or []))
            restarts[p.metadata.name] = max(count, restarts.get(p.metadata.name, 0))
        return listed

    def pods() -> int:
        return len(pod_list())

    def terminating() -> list[Any]:
        return [p for p in pod_list() if p.metadata.deletion_timestamp is not None]

    def ready() -> int:
        dep = cluster.apps.read_namespaced_deployment(f"{QUEUE}-worker", NAMESPACE)
        return int(dep.status.ready_replicas or 0)

    async def registry_busy() -> bool:
        snap = await q.protocol.stats(60)
        infos = [WorkerInfo.model_validate_json(w) for w in snap.workers]
        current = {p.metadata.name for p in pod_list()}
        return len({i.name for i in infos if i.jobs_in_hand > 0} & current) == plan.pods

    def set_scaling(least: int, most: int) -> None:
        patch = {"spec": {"scaling": {"minReplicas": least, "maxReplicas": most}}}
        cluster.custom.patch_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, QUEUE, patch
        )

    keep = plan.pods // 2  # pods left after each scale-down
    going = plan.pods - keep
    ids: list[str] = []
    cycles: list[dict[str, Any]] = []
    removed = 0
    async with AsyncQueue.from_url(url, QUEUE) as q:
        await wait("the worker Deployment exists", lambda: replicas() == 0, until)
        while removed < plan.scale_downs:
            # Every pod up and idle first (a pod starting late would find the jobs taken).
            set_scaling(plan.pods, plan.pods)
            await wait(f"{plan.pods} ready pods", lambda: ready() == plan.pods == pods(), until)
            job = {"name": "chaos.run", "payload": {"ms": plan.job_seconds * 1000}}
            batch = await q.submit_many([job] * plan.pods)
            ids += batch

            def all_busy(batch: list[str] = batch) -> bool:
                return len(_in_flight(tally.read_runs(tally_dir), batch)) == plan.pods

            await wait(f"{plan.pods} pods each running a job", all_busy, until)
            busy_at = time.monotonic()
            # The operator ranks pods by the jobs the registry says they hold, which a worker
            # reports with its lease renewals (every third of a lease): wait for that report,
            # so the pod-deletion-cost it sets is measured, not the heartbeat's lag.
            await wait("the registry showing every pod busy", registry_busy, until, 0.5)
            registry_lag = time.monotonic() - busy_at
            set_scaling(0, keep)
            shrunk_at = time.monotonic()
            await wait(f"the Deployment scaled to {keep}", lambda: replicas() == keep, until)
            scaled_after = time.monotonic() - shrunk_at
            await wait(f"{going} pods terminating", lambda: len(terminating()) == going, until)
            # pod-deletion-cost as the operator set it before the scale-down (busy: 1)
            costs = {p.metadata.name: (p.metadata.annotations or {}).get(DELETION_COST)
                     for p in pod_list()}  # fmt: skip
            # deletionTimestamp: when the pod was deleted plus its grace period
            gone = terminating()
            sigterm_at = min(p.metadata.deletion_timestamp.timestamp() for p in gone) - plan.grace
            removed_pods = {p.metadata.name for p in gone}

            async def finished(batch: list[str] = batch) -> bool:
                fields = await q.protocol.get_many_fields(batch)
                return all(f.get("state") in tally.TERMINAL for f in fields)

            await wait("the cycle's jobs finished", finished, until, 0.5)

            # The removed pods gone (the rest may go too: an idle queue scales to zero).
            def removed_gone(removed_pods: set[str] = removed_pods) -> bool:
                return not removed_pods & {p.metadata.name for p in pod_list()}

            await wait("the removed pods gone", removed_gone, until, 0.5)
            removed += plan.pods - keep
            ended = _ended_after(tally.read_runs(tally_dir), batch, removed_pods, sigterm_at)
            cycles.append({"scaled_after": round(scaled_after, 1),
                           "registry_showed_busy_after": round(registry_lag, 1),
                           "pods_gone_after": round(time.monotonic() - shrunk_at, 1),
                           "deletion_costs": sorted(str(c) for c in costs.values()),
                           "removed": sorted(removed_pods),
                           "removed_finished_job_after_sigterm": ended})  # fmt: skip
        records = dict(zip(ids, await q.protocol.get_many_fields(ids), strict=True))
    runs = tally.read_runs(tally_dir)
    cut = [
        r for job_id in ids for r in runs.get(job_id, [])
        if r.mark == "S" and not any(e.mark in "EF" and e.token == r.token for e in runs[job_id])
    ]  # fmt: skip
    gone = {pod for c in cycles for pod in c["removed"]}
    pids = _worker_pids(tally_dir, gone)
    return {
        "plan": asdict(plan),
        "worker_pods": f"containers of {cluster.worker_image}",
        "busy_pods_removed": removed,
        "removed_pods_worker_pids": sorted(pids),
        "worker_container_restarts": sum(restarts.values()),
        "jobs_killed_by_scale_down": sum(1 for r in cut if r.worker in gone),
        # e.g. a container restarted by its liveness probe on a loaded machine
        "runs_cut_elsewhere": sum(1 for r in cut if r.worker not in gone),
        "cycles": cycles,
        "figures": tally.account(ids, records, runs, tally.LogFacts(), kills={}),
    }
