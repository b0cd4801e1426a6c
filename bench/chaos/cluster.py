"""The local cluster of the operator runs (3 and 5): a real kube-apiserver and a real node
(containerd, kubelet). Worker pods are containers of the worker image (worker/Dockerfile);
they reach the host's redis-server at the cluster's ``host_ip`` and write the handler's tally
(``handlers.py``) to a host directory mounted into them (hostPath), with bench/ mounted
read-only for the handler module itself. Operators run on the host as processes, so a run
can SIGKILL them.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.chaos.workers import REPO
from bench.redisserver import RedisProcess, free_port

GROUP, VERSION, PLURAL, NAMESPACE = "jobqueue.dev", "v1alpha1", "jobqueues", "chaos"
HOLDS = "now holds lease"
STANDS_BY = "standing by"
SRC_MOUNT, TALLY_MOUNT = "/chaos-src", "/chaos-tally"
# Only the worker image is needed: the node starts faster without importing the rest.
IMAGES = ("worker",)


@dataclass
class Operator:
    """One operator replica (``name``), restartable; each start logs to a file of its own."""

    env: dict[str, str]
    logs: Path
    name: str = "operator"
    proc: subprocess.Popen[bytes] | None = None
    started: int = 0
    log: Path | None = None

    def start(self) -> Path:
        self.started += 1
        self.log = self.logs / f"{self.name}-{self.started}.log"
        env = {**self.env, "METRICS_PORT": str(free_port())}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jobqueue_operator.main"], env=env, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        return self.log

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def said(self, text: str) -> bool:
        return self.log is not None and self.log.exists() and text in self.log.read_text("utf-8")

    def leads(self) -> bool:
        """This start of the replica logged that it holds the Lease (it may scale)."""
        return self.said(HOLDS)


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

    def first_change_after(self, start: float, value: int | None) -> float | None:
        """When the sampled replicas first differed from ``value`` after ``start``."""
        return next((t for t, r in self.samples if t > start and r != value), None)


@dataclass
class ChaosCluster:
    """The cluster as the runs use it: API clients, and where pods reach the host."""

    cluster: Any  # bench.operator.run.Cluster

    @property
    def apps(self) -> Any:
        return self.cluster.apps

    @property
    def custom(self) -> Any:
        return self.cluster.custom

    @property
    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.cluster.api)

    @property
    def worker_image(self) -> str:
        return str(self.cluster.info["images"]["worker"])

    def reachable(self, url: str) -> str:
        """A loopback URL as the node's pods (and the host) reach it."""
        host_ip = str(self.cluster.info["host_ip"])
        return re.sub(r"(?<=@|/)(127\.0\.0\.1|localhost)(?=:)", host_ip, url)


def manifest(
    name: str, redis_url: str, tally_dir: Path, concurrency: int, max_replicas: int, grace: int
) -> dict[str, Any]:
    """A JobQueue whose worker containers import ``bench.chaos.handlers`` from the host's
    bench/ (read-only) and write their tallies to ``tally_dir`` (world-writable: the worker
    runs as uid 10001)."""
    tally_dir.chmod(0o777)
    volumes = [
        {"name": "chaos-src", "hostPath": {"path": str(REPO / "bench"), "type": "Directory"}},
        {"name": "chaos-tally", "hostPath": {"path": str(tally_dir), "type": "Directory"}},
    ]
    mounts = [
        {"name": "chaos-src", "mountPath": f"{SRC_MOUNT}/bench", "readOnly": True},
        {"name": "chaos-tally", "mountPath": TALLY_MOUNT},
    ]
    env = {"PYTHONPATH": SRC_MOUNT, "CHAOS_TALLY_DIR": TALLY_MOUNT}
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "JobQueue",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "redis": {"url": redis_url},
            "worker": {"handlers": ["bench.chaos.handlers"], "concurrency": concurrency,
                       "terminationGracePeriodSeconds": grace, "logFormat": "json",
                       "env": [{"name": k, "value": v} for k, v in env.items()],
                       "volumes": volumes, "volumeMounts": mounts},
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
            raise TimeoutError(f"timed out waiting until {what}")
        await asyncio.sleep(every)


Attack = Callable[
    [ChaosCluster, RedisProcess, str, dict[str, str], Path], Coroutine[Any, Any, dict[str, Any]]
]


def with_cluster(attack: Attack, workdir: Path | None) -> dict[str, Any]:
    """Start the local cluster (CRDs installed, namespace ``chaos``) and a redis-server; run
    ``attack(cluster, server, redis_url, operator_env, base)`` (``redis_url``: the server as
    pods reach it); tear everything down."""
    sys.path.insert(0, str(REPO / "hack"))
    try:
        from localcluster import cli as localcluster
        from localcluster import images as node_images
    except ImportError as exc:
        return {"skipped": f"hack/localcluster not importable: {exc}"}
    bin_dir = localcluster.default_bin_dir()
    missing = localcluster.missing_binaries(bin_dir)
    if missing:
        return {"skipped": f"Kubernetes binaries missing ({', '.join(missing)}): run make tools"}
    stale = set(node_images.stale(bin_dir)) & {"pause", "coredns", *IMAGES}
    if stale:
        return {"skipped": f"node images {', '.join(sorted(stale))} not built: "
                           "python hack/localcluster.py images"}  # fmt: skip
    from bench.operator.run import Cluster

    with tempfile.TemporaryDirectory(prefix="chaos-operator-") as tmp:
        base = workdir or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        server = RedisProcess(base / "redis").start()
        cluster = Cluster(base / "state", images=IMAGES)
        chaos = ChaosCluster(cluster)
        try:
            cluster.install_crds(NAMESPACE)
            env = {**cluster.env, "WATCH_NAMESPACES": NAMESPACE, "LEASE_NAMESPACE": NAMESPACE,
                   "HEALTH_PORT": "0", "PYTHONUNBUFFERED": "1",
                   "WORKER_IMAGE": chaos.worker_image}  # fmt: skip
            url = chaos.reachable(server.url)
            return asyncio.run(attack(chaos, server, url, env, base))
        finally:
            cluster.close()
            server.stop()
