#!/usr/bin/env python3
"""`make demo`: the whole product on this machine, live.

Brings up the local Kubernetes (hack/localcluster), a redis-server, installs the operator with
the Helm chart (its pod runs as a local process under the chart's ServiceAccount), creates a
JobQueue, submits a burst of `debug.sleep` jobs and shows the workers scaling up and back down
in a refreshing table. Leaves everything running for a look around unless --down is given.

    python hack/demo.py [--jobs 120] [--seconds 2] [--max-replicas 6] [--down]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
STATE = REPO / ".localcluster"
NAMESPACE = "demo"
RELEASE = "jobqueue-operator"
OPERATOR_NAMESPACE = "jobqueue-system"
QUEUE = "demo"
REDIS_PIDFILE = STATE / "demo-redis.pid"
REDIS_PORT_FILE = STATE / "demo-redis.port"
TIME_LIMIT = 600.0  # the whole demo, so it can never hang

sys.path.insert(0, str(REPO / "worker"))

from rich.console import Console  # noqa: E402
from rich.live import Live  # noqa: E402
from rich.table import Table  # noqa: E402

console = Console()


class DemoError(RuntimeError):
    """A step failed; the message says which and where to look."""


def run(*args: str, timeout: float = 300, check: bool = True, **kw: Any) -> str:
    out = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kw)
    if check and out.returncode != 0:
        raise DemoError(f"`{' '.join(args)}` failed ({out.returncode}):\n{out.stderr.strip()}")
    return out.stdout


def tools_bin() -> Path:
    return Path(run(str(REPO / "hack" / "build-tools.sh"), "--print-bin").strip().splitlines()[-1])


def step(message: str) -> None:
    console.print(f"[bold cyan]==>[/] {message}")


# --- the parts -------------------------------------------------------------------------------


def cluster_up(bin_dir: Path) -> Path:
    if not (bin_dir / "kube-apiserver").exists() or not (bin_dir / "helm").exists():
        step("building the Kubernetes tools once (hack/build-tools.sh; 15-30 min when cold)")
        subprocess.run([str(REPO / "hack" / "build-tools.sh")], check=True)
    step("starting the local Kubernetes (etcd, kube-apiserver, controllers, scheduler, pod runner)")
    t0 = time.monotonic()
    run(sys.executable, str(REPO / "hack" / "localcluster.py"), "up", timeout=300)
    kubeconfig = STATE / "admin.kubeconfig"
    if not kubeconfig.exists():
        raise DemoError(f"the cluster came up without {kubeconfig}; see {STATE}/logs")
    console.print(f"    up in {time.monotonic() - t0:.1f} s; KUBECONFIG={kubeconfig}")
    return kubeconfig


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_up() -> str:
    """A redis-server for the demo, started once; `make cluster-down` stops it with the cluster
    (it carries the cluster's process marker)."""
    if REDIS_PORT_FILE.exists() and REDIS_PIDFILE.exists():
        port = int(REDIS_PORT_FILE.read_text())
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(REDIS_PIDFILE.read_text()), 0)
            url = f"redis://127.0.0.1:{port}/0"
            step(f"reusing the demo redis-server at {url}")
            return url
    port = free_port()
    step(f"starting redis-server on 127.0.0.1:{port}")
    env = {**os.environ, "LOCALCLUSTER_STATE": str(STATE.resolve())}
    run(
        shutil.which("redis-server") or "/usr/bin/redis-server",
        "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--daemonize", "yes", "--pidfile", str(REDIS_PIDFILE), "--dir", str(STATE),
        "--logfile", str(STATE / "logs" / "demo-redis.log"),
        env=env,
    )  # fmt: skip
    REDIS_PORT_FILE.write_text(str(port))
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise DemoError(f"redis-server did not answer on port {port}") from None
            time.sleep(0.1)
    client.flushdb()
    return url


def install_operator(helm: Path, kubeconfig: Path) -> None:
    step(f"installing the operator with the Helm chart (namespace {OPERATOR_NAMESPACE})")
    run(
        str(helm), "upgrade", "--install", RELEASE, str(REPO / "charts" / "jobqueue-operator"),
        "--kubeconfig", str(kubeconfig), "--namespace", OPERATOR_NAMESPACE, "--create-namespace",
        "--set", "logFormat=text", "--wait", "--timeout", "3m",
        timeout=240,
    )  # fmt: skip


def kubectl(kubeconfig: Path, bin_dir: Path, *args: str, stdin: str | None = None) -> str:
    return run(str(bin_dir / "kubectl"), "--kubeconfig", str(kubeconfig), *args, input=stdin)


def apply_jobqueue(kubeconfig: Path, bin_dir: Path, redis_url: str, max_replicas: int) -> None:
    step(f"creating JobQueue {NAMESPACE}/{QUEUE} (0..{max_replicas} workers, 2 jobs each)")
    manifest = f"""
apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
---
apiVersion: jobqueue.dev/v1alpha1
kind: JobQueue
metadata:
  name: {QUEUE}
  namespace: {NAMESPACE}
spec:
  redis:
    url: {redis_url}
  worker:
    concurrency: 2
    terminationGracePeriodSeconds: 30
  scaling:
    minReplicas: 0
    maxReplicas: {max_replicas}
    pollIntervalSeconds: 1
    scaleDownStabilizationSeconds: 10
"""
    kubectl(kubeconfig, bin_dir, "apply", "-f", "-", stdin=manifest)


# --- the live view ----------------------------------------------------------------------------


@dataclass
class Snapshot:
    queued: int = 0
    active: int = 0
    completed: int = 0
    failed: int = 0
    workers: int = 0
    desired: int | None = None
    replicas: int | None = None
    ready: int | None = None
    reason: str = ""
    conditions: dict[str, str] = field(default_factory=dict)


def read_jobqueue(custom: Any) -> dict[str, Any]:
    obj: dict[str, Any] = custom.get_namespaced_custom_object(
        "jobqueue.dev", "v1alpha1", NAMESPACE, "jobqueues", QUEUE
    )
    return obj


def snapshot(queue: Any, custom: Any) -> Snapshot:
    stats = queue.stats()
    snap = Snapshot(
        queued=stats.queued + stats.delayed_due,
        active=stats.active,
        completed=stats.completed,
        failed=stats.failed,
        workers=len(stats.workers),
    )
    status = read_jobqueue(custom).get("status", {})
    snap.desired = status.get("desiredReplicas")
    snap.replicas = status.get("replicas")
    snap.ready = status.get("readyReplicas")
    snap.reason = status.get("lastScaleReason") or ""
    snap.conditions = {c["type"]: c["status"] for c in status.get("conditions") or []}
    return snap


def bar(done: int, total: int, width: int = 30) -> str:
    filled = int(width * done / total) if total else width
    return "[green]" + "█" * filled + "[/][dim]" + "░" * (width - filled) + "[/]"


def render(snap: Snapshot, total: int, started: float, history: list[str]) -> Table:
    table = Table(title=f"JobQueue {NAMESPACE}/{QUEUE}: {total} jobs of debug.sleep", min_width=72)
    table.add_column("", style="bold")
    table.add_column("")
    done = snap.completed + snap.failed
    table.add_row("jobs done", f"{bar(done, total)} {done}/{total}  (failed {snap.failed})")
    table.add_row("backlog", f"{snap.queued} queued, {snap.active} running")
    wanted = "-" if snap.desired is None else str(snap.desired)
    have = "-" if snap.replicas is None else str(snap.replicas)
    ready = "-" if snap.ready is None else str(snap.ready)
    table.add_row("replicas", f"desired {wanted}   current {have}   ready {ready}")
    table.add_row("workers", f"{snap.workers} registered in Redis")
    table.add_row("last scale", snap.reason or "-")
    table.add_row("elapsed", f"{time.monotonic() - started:.0f} s")
    for line in history[-6:]:
        table.add_row("", f"[dim]{line}[/]")
    return table


def watch(queue: Any, custom: Any, total: int, deadline: float) -> tuple[int, Snapshot]:
    """Refresh until every job is done and the workers are back at zero (or the deadline)."""
    started = time.monotonic()
    history: list[str] = []
    peak = 0
    last_desired: int | None = None
    snap = Snapshot()
    with Live(console=console, refresh_per_second=4) as live:
        while time.monotonic() < deadline:
            try:
                snap = snapshot(queue, custom)
            except Exception as exc:  # keep showing; a transient read error is not the end
                history.append(f"read error: {exc}")
            if snap.desired is not None and snap.desired != last_desired:
                history.append(
                    f"{time.monotonic() - started:5.1f} s  desired {last_desired} -> "
                    f"{snap.desired}: {snap.reason}"
                )
                last_desired = snap.desired
            peak = max(peak, snap.replicas or 0)
            live.update(render(snap, total, started, history))
            finished = snap.completed + snap.failed >= total
            if finished and peak > 0 and (snap.replicas or 0) == 0 and snap.desired == 0:
                break
            time.sleep(0.5)
    return peak, snap


def look_around(kubeconfig: Path, bin_dir: Path, redis_url: str) -> None:
    console.print()
    console.print("[bold]Look around[/] (everything is still running):")
    console.print(f"  export PATH={bin_dir}:$PATH KUBECONFIG={kubeconfig}")
    console.print(f"  kubectl get jq -n {NAMESPACE}               # replicas, backlog, oldest wait")
    console.print(f"  kubectl describe jq {QUEUE} -n {NAMESPACE}   # conditions and scale events")
    console.print(f"  kubectl get deploy,pods -n {NAMESPACE}")
    console.print(f"  kubectl get pods -n {OPERATOR_NAMESPACE}")
    console.print(f"  jobq --redis {redis_url} stats {QUEUE} --watch")
    console.print(
        f"  jobq --redis {redis_url} submit {QUEUE} debug.sleep '{{\"seconds\": 2}}'   "
        "# then watch it scale"
    )
    console.print(f"  python hack/localcluster.py logs --help        # pod logs ({STATE}/pods)")
    console.print()
    console.print("[bold]Stop everything with:[/] make cluster-down")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=120, help="jobs in the burst (default 120)")
    parser.add_argument("--seconds", type=float, default=2.0, help="each job sleeps this long")
    parser.add_argument("--max-replicas", type=int, default=6)
    parser.add_argument("--down", action="store_true", help="tear everything down at the end")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.seconds < 0 or args.max_replicas < 1:
        parser.error("--jobs and --max-replicas must be >= 1 and --seconds >= 0")

    deadline = time.monotonic() + TIME_LIMIT
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bin_dir = tools_bin()
    os.environ["PATH"] = f"{bin_dir}:{os.environ['PATH']}"
    ok = False
    try:
        kubeconfig = cluster_up(bin_dir)
        redis_url = redis_up()
        install_operator(bin_dir / "helm", kubeconfig)
        apply_jobqueue(kubeconfig, bin_dir, redis_url, args.max_replicas)

        import jobqueue
        from kubernetes import client, config

        config.load_kube_config(str(kubeconfig))
        custom = client.CustomObjectsApi()
        queue = jobqueue.Queue(QUEUE, redis_url)
        step(f"submitting {args.jobs} jobs of debug.sleep {args.seconds:g} s")
        queue.submit_many([("debug.sleep", {"seconds": args.seconds}) for _ in range(args.jobs)])
        peak, last = watch(queue, custom, args.jobs, deadline)
        done = last.completed + last.failed
        console.print(
            f"[bold green]done:[/] {last.completed}/{args.jobs} completed, {last.failed} failed, "
            f"peak {peak} worker pods, now {last.replicas}"
        )
        ok = done >= args.jobs
        if not ok:
            console.print("[yellow]the demo's time ran out before every job finished[/]")
        if args.down:
            step("tearing down (make cluster-down)")
            run(sys.executable, str(REPO / "hack" / "localcluster.py"), "down", timeout=120)
        else:
            look_around(kubeconfig, bin_dir, redis_url)
    except DemoError as exc:
        console.print(f"[bold red]demo failed:[/] {exc}")
        console.print(f"logs: {STATE}/logs and {STATE}/pods; stop with: make cluster-down")
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
