"""Run 3: the operator under faults, on the local cluster (hack/localcluster: a real
kube-apiserver; worker pods are `jobq worker` processes).

- Bursts of jobs land in the queue; a few seconds into each burst the operator is
  SIGKILLed and a new one started (it acts once the killed one's Lease has lapsed).
- With the workers busy at their maximum, the Redis that the operator and the workers use
  is SIGSTOPped for ``outage`` seconds (connections hang: unreachable, not refused), then
  resumed.

Figures: jobs submitted / completed / lost, runs per job (the tally of ``handlers.py``, as in
run 1; stale results accepted must be 0), per kill the replicas at the kill and while no
operator led, and the time until the new operator held the Lease; the replicas before and
during the outage (held: the operator must not scale on what it cannot read) and the time
from the end of the outage until every job had finished.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from jobqueue.client import AsyncQueue

from bench.chaos import tally
from bench.chaos.workers import REPO
from bench.redisserver import RedisProcess, free_port

QUEUE = "burst"
GROUP, VERSION, PLURAL, NAMESPACE = "jobqueue.dev", "v1alpha1", "jobqueues", "chaos"
HOLDS = "now holds lease"


@dataclass(frozen=True)
class Plan:
    bursts: int = 4
    burst_jobs: int = 60
    job_seconds: float = 2.0
    kill_after: float = 3.0  # seconds into a burst
    outage: float = 60.0
    outage_job_seconds: float = 20.0
    max_replicas: int = 4
    concurrency: int = 4
    deadline: float = 900.0


FULL = Plan()
QUICK = Plan(bursts=2, burst_jobs=24, outage=20.0, outage_job_seconds=10.0, deadline=420.0)


@dataclass
class Operator:
    env: dict[str, str]
    logs: Path
    proc: subprocess.Popen[bytes] | None = None
    started: int = 0

    def start(self) -> Path:
        self.started += 1
        log = self.logs / f"operator-{self.started}.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jobqueue_operator.main"], env=self.env, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        return log

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)


@dataclass
class Replicas:
    """spec.replicas of the worker Deployment, sampled in a thread every 0.25 s."""

    read: Callable[[], int]
    samples: list[tuple[float, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def sample_forever(self) -> None:
        while not self.stop.wait(0.25):
            try:
                self.samples.append((time.time(), self.read()))
            except Exception:  # an API hiccup is a missing sample, not a failed run
                continue

    def between(self, start: float, end: float) -> list[int]:
        return [r for t, r in self.samples if start <= t <= end]

    def last(self) -> int | None:
        return self.samples[-1][1] if self.samples else None


def manifest(
    name: str, redis_url: str, tally_dir: Path, concurrency: int, max_replicas: int, grace: int
) -> dict[str, Any]:
    """A JobQueue whose worker pods run ``handlers.py`` (their tallies in ``tally_dir``)."""
    env = {"PYTHONPATH": str(REPO), "CHAOS_TALLY_DIR": str(tally_dir)}
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "JobQueue",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "redis": {"url": redis_url},
            "worker": {"handlers": ["bench.chaos.handlers"], "concurrency": concurrency,
                       "terminationGracePeriodSeconds": grace, "logFormat": "json",
                       "env": [{"name": k, "value": v} for k, v in env.items()]},
            "scaling": {"minReplicas": 0, "maxReplicas": max_replicas,
                        "pollIntervalSeconds": 1, "scaleDownStabilizationSeconds": 5},
        },
    }  # fmt: skip


async def wait(what: str, check: Callable[[], Any], until: float, every: float = 0.25) -> None:
    """Poll ``check`` (sync or async; an exception counts as not yet) until it holds."""
    while True:
        try:
            answer = check()
            if asyncio.iscoroutine(answer):
                answer = await answer
            if answer:
                return
        except Exception:  # the Deployment not there yet, Redis frozen: not yet
            pass
        if time.monotonic() > until:
            raise TimeoutError(f"operator run: timed out waiting until {what}")
        await asyncio.sleep(every)


def _holds_lease(log: Path) -> bool:
    """This operator logged that it holds the Lease (it leads: it may scale)."""
    return log.exists() and HOLDS in log.read_text(errors="replace")


Attack = Callable[[Any, RedisProcess, Operator, Path], Coroutine[Any, Any, dict[str, Any]]]


def with_cluster(attack: Attack, workdir: Path | None) -> dict[str, Any]:
    """Start the local cluster (CRDs installed, namespace ``chaos``), a redis-server and an
    operator; run ``attack(cluster, server, operator, base)``; tear everything down."""
    sys.path.insert(0, str(REPO / "hack"))
    try:
        from localcluster import cli as localcluster
    except ImportError as exc:
        return {"skipped": f"hack/localcluster not importable: {exc}"}
    missing = localcluster.missing_binaries(localcluster.default_bin_dir())
    if missing:
        return {"skipped": f"Kubernetes binaries missing ({', '.join(missing)}): run make tools"}
    from bench.operator.run import Cluster

    # worker pods run `jobq worker` from PATH: this interpreter's
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    with tempfile.TemporaryDirectory(prefix="chaos-operator-") as tmp:
        base = workdir or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        server = RedisProcess(base / "redis").start()
        cluster = Cluster(base / "state")
        try:
            for crd in sorted((REPO / "crds").glob("*.yaml")):
                cluster.kubectl("apply", "-f", str(crd))
            cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                            "crd/jobqueues.jobqueue.dev")  # fmt: skip
            cluster.kubectl("create", "namespace", NAMESPACE)
            env = {**cluster.env, "WATCH_NAMESPACES": NAMESPACE, "LEASE_NAMESPACE": NAMESPACE,
                   "METRICS_PORT": str(free_port()), "HEALTH_PORT": "0",
                   "PYTHONUNBUFFERED": "1"}  # fmt: skip
            operator = Operator(env, base)
            try:
                return asyncio.run(attack(cluster, server, operator, base))
            finally:
                operator.kill()
        finally:
            cluster.close()
            server.stop()


def run(plan: Plan, workdir: Path | None = None) -> dict[str, Any]:
    return with_cluster(partial(_attack, plan), workdir)


async def _attack(
    plan: Plan, cluster: Any, server: RedisProcess, operator: Operator, base: Path
) -> dict[str, Any]:
    until = time.monotonic() + plan.deadline
    tally_dir = base / "tally"
    tally_dir.mkdir(exist_ok=True)
    operator.start()
    body = manifest(QUEUE, server.url, tally_dir, plan.concurrency, plan.max_replicas, 10)
    cluster.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)

    def read() -> int:
        dep = cluster.apps.read_namespaced_deployment(f"{QUEUE}-worker", NAMESPACE)
        return int(dep.spec.replicas or 0)

    replicas = Replicas(read)
    sampler = threading.Thread(target=replicas.sample_forever, daemon=True)
    sampler.start()
    client = aioredis.Redis.from_url(server.url, decode_responses=True)
    q = AsyncQueue(QUEUE, redis=client)
    ids: list[str] = []
    failovers: list[dict[str, Any]] = []

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
            log = operator.start()
            await wait("the new operator holds the Lease", partial(_holds_lease, log), until)
            held = time.time()
            await wait("the burst is done", burst_done, until, 0.5)
            failovers.append({
                "replicas_at_kill": at_kill,
                "replicas_without_operator": sorted(set(replicas.between(killed, held))),
                "lease_held_after_kill": round(held - killed, 1),
                "replicas_max_in_burst": max(replicas.between(burst_at, time.time()), default=0),
                "burst_seconds": round(time.time() - burst_at, 1),
            })  # fmt: skip
        outage = await _outage(plan, q, server, replicas, until, ids)
        records = dict(zip(ids, await q.protocol.get_many_fields(ids), strict=True))
    finally:
        replicas.stop.set()
        sampler.join(timeout=5)
        await client.aclose()
    deployments = cluster.apps.list_namespaced_deployment(NAMESPACE).items
    return {
        "plan": asdict(plan),
        "operator_kills": len(failovers),
        "failovers": failovers,
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
