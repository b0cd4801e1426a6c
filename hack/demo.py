#!/usr/bin/env python3
"""`make demo`: the whole product on this machine, live.

Brings up the local Kubernetes (hack/localcluster: a control plane and a real node), installs
the operator and a small Redis with the Helm chart (containers of the images built on this
machine from the project's Dockerfiles, the operator under the chart's ServiceAccount),
creates a JobQueue that reaches that Redis by its Service name, submits a burst of
`debug.sleep` jobs and shows the workers scaling up and back down in a refreshing table.
Leaves everything running for a look around unless --down is given.

    python hack/demo.py [--jobs 120] [--seconds 2] [--max-replicas 6] [--down] [--state-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_STATE = REPO / ".localcluster"
STATE = DEFAULT_STATE  # set from --state-dir in main()
NAMESPACE = "demo"
RELEASE = "jobqueue-operator"
OPERATOR_NAMESPACE = "jobqueue-system"
QUEUE = "demo"
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
    return str(out.stdout)


def localcluster(*args: str) -> list[str]:
    """The command line of hack/localcluster.py for this demo's state directory."""
    return [
        sys.executable,
        str(REPO / "hack" / "localcluster.py"),
        "--state-dir",
        str(STATE),
        *args,
    ]


def stop_command() -> str:
    if STATE == DEFAULT_STATE:
        return "make cluster-down"
    return f"python hack/localcluster.py --state-dir {STATE} down"


def tools_bin() -> Path:
    return Path(run(str(REPO / "hack" / "build-tools.sh"), "--print-bin").strip().splitlines()[-1])


def step(message: str) -> None:
    console.print(f"[bold cyan]==>[/] {message}")


# --- the parts -------------------------------------------------------------------------------


def cluster_up(bin_dir: Path) -> Path:
    if not (bin_dir / "kubelet").exists() or not (bin_dir / "helm").exists():
        step("building the Kubernetes tools once (hack/build-tools.sh; 20-35 min when cold)")
        subprocess.run([str(REPO / "hack" / "build-tools.sh")], check=True)
    step("building the images (worker, operator, ...) unless cached (a few minutes when cold)")
    subprocess.run([*localcluster("images")], check=True, stdout=subprocess.DEVNULL)
    step("starting the local Kubernetes (control plane; node: containerd, kubelet, CoreDNS)")
    t0 = time.monotonic()
    run(*localcluster("up"), timeout=300)
    kubeconfig = STATE / "admin.kubeconfig"
    if not kubeconfig.exists():
        raise DemoError(f"the cluster came up without {kubeconfig}; see {STATE}/logs")
    console.print(f"    up in {time.monotonic() - t0:.1f} s; KUBECONFIG={kubeconfig}")
    return kubeconfig


def local_images() -> list[str]:
    """--set values naming the images built on this machine (nothing is pulled here)."""
    info = json.loads((STATE / "ready.json").read_text())
    sets = []
    for key, name in (("image", "operator"), ("workerImage", "worker"), ("redis.image", "redis")):
        repository, tag = info["images"][name].rsplit(":", 1)
        sets += ["--set", f"{key}.repository={repository}", "--set", f"{key}.tag={tag}"]
    return [*sets, "--set", "image.pullPolicy=Never"]


def install_operator(helm: Path, kubeconfig: Path) -> tuple[str, str]:
    """Install the chart with its small Redis; returns the Redis URL of the JobQueue (the
    Service's name) and one this process reaches (the Redis pod's address)."""
    step(
        f"installing the operator and a Redis with the Helm chart (namespace {OPERATOR_NAMESPACE})"
    )
    run(
        str(helm), "upgrade", "--install", RELEASE, str(REPO / "charts" / "jobqueue-operator"),
        "--kubeconfig", str(kubeconfig), "--namespace", OPERATOR_NAMESPACE, "--create-namespace",
        "--set", "redis.enabled=true", *local_images(),
        # The HTTP API and dashboard (the operator image), showing the chart's Redis.
        "--set", "dashboard.enabled=true",
        "--set", f"dashboard.redis.url=redis://{RELEASE}-redis.{OPERATOR_NAMESPACE}:6379/0",
        "--set", "dashboard.sampleInterval=1s",
        "--wait", "--timeout", "4m",
        timeout=300,
    )  # fmt: skip
    service = f"redis://{RELEASE}-redis.{OPERATOR_NAMESPACE}:6379/0"
    url = f"redis://{redis_pod_ip(kubeconfig)}:6379/0"
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.ping()
        client.flushdb()
    except redis.RedisError as exc:
        raise DemoError(f"the chart's Redis does not answer at {url}: {exc}") from None
    finally:
        client.close()
    return service, url


def dashboard_url(kubeconfig: Path) -> str:
    """The dashboard's address (its pod's IP and port) with the chart's write token."""
    import base64

    from kubernetes import client, config

    config.load_kube_config(str(kubeconfig))  # type: ignore[no-untyped-call]
    core = client.CoreV1Api()
    selector = "app.kubernetes.io/component=dashboard"
    deadline = time.monotonic() + 60
    while True:
        pods = core.list_namespaced_pod(OPERATOR_NAMESPACE, label_selector=selector).items
        ready = [
            p
            for p in pods
            if p.status.pod_ip
            and p.metadata.deletion_timestamp is None
            and any(c.ready for c in p.status.container_statuses or [])
        ]
        if ready:
            break
        if time.monotonic() > deadline:
            raise DemoError(
                f"the dashboard pod is not ready (kubectl get pods -n {OPERATOR_NAMESPACE})"
            )
        time.sleep(0.5)
    pod = ready[0]
    port = pod.spec.containers[0].ports[0].container_port
    secret = core.read_namespaced_secret(f"{RELEASE}-dashboard-tokens", OPERATOR_NAMESPACE)
    token = base64.b64decode(secret.data["write"]).decode()
    return f"http://{pod.status.pod_ip}:{port}/#token={token}"


def redis_pod_ip(kubeconfig: Path) -> str:
    """The Redis pod's address: the host routes the node's pod network."""
    from kubernetes import client, config

    config.load_kube_config(str(kubeconfig))  # type: ignore[no-untyped-call]
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=redis"
    pods = client.CoreV1Api().list_namespaced_pod(OPERATOR_NAMESPACE, label_selector=selector)
    ready = [p for p in pods.items if p.status.pod_ip and p.metadata.deletion_timestamp is None]
    if not ready:
        raise DemoError(f"no Redis pod in {OPERATOR_NAMESPACE}")
    return str(ready[0].status.pod_ip)


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
    title = f"JobQueue {NAMESPACE}/{QUEUE}: {total} jobs of debug.sleep"
    table = Table(title=title, min_width=72, show_header=False)
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
                if last_desired is not None:
                    history.append(
                        f"{time.monotonic() - started:5.1f} s  scaled {last_desired} -> "
                        f"{snap.desired} ({snap.reason})"
                    )
                last_desired = snap.desired
            peak = max(peak, snap.replicas or 0)
            live.update(render(snap, total, started, history))
            finished = snap.completed + snap.failed >= total
            if finished and peak > 0 and (snap.replicas or 0) == 0 and snap.desired == 0:
                break
            time.sleep(0.5)
    return peak, snap


def look_around(kubeconfig: Path, bin_dir: Path, redis_url: str, dashboard: str) -> None:
    console.print()
    console.print("[bold]Look around[/] (everything is still running):")
    console.print(f"  dashboard: {dashboard}")
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
    # The workers are at zero once the burst is done: these need the submit above first.
    console.print(f"  kubectl logs -n {NAMESPACE} deploy/{QUEUE}-worker   # while it has a worker")
    console.print(f"  kubectl exec -n {NAMESPACE} deploy/{QUEUE}-worker -- id   # uid 10001")
    console.print()
    console.print(f"[bold]Stop everything with:[/] {stop_command()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=120, help="jobs in the burst (default 120)")
    parser.add_argument("--seconds", type=float, default=2.0, help="each job sleeps this long")
    parser.add_argument("--max-replicas", type=int, default=6)
    parser.add_argument("--down", action="store_true", help="tear everything down at the end")
    parser.add_argument(
        "--state-dir", type=Path, default=DEFAULT_STATE, help="cluster state (.localcluster/)"
    )
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.seconds < 0 or args.max_replicas < 1:
        parser.error("--jobs and --max-replicas must be >= 1 and --seconds >= 0")

    global STATE
    STATE = args.state_dir.resolve()
    deadline = time.monotonic() + TIME_LIMIT
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bin_dir = tools_bin()
    os.environ["PATH"] = f"{bin_dir}:{os.environ['PATH']}"
    ok = False
    try:
        kubeconfig = cluster_up(bin_dir)
        service_url, redis_url = install_operator(bin_dir / "helm", kubeconfig)
        dashboard = dashboard_url(kubeconfig)
        step(f"dashboard (HTTP API and web UI; open it to watch the burst): {dashboard}")
        apply_jobqueue(kubeconfig, bin_dir, service_url, args.max_replicas)

        import jobqueue
        from kubernetes import client, config

        config.load_kube_config(str(kubeconfig))  # type: ignore[no-untyped-call]
        custom = client.CustomObjectsApi()
        queue = jobqueue.Queue(QUEUE, redis_url)
        step(f"submitting {args.jobs} jobs of debug.sleep {args.seconds:g} s")
        queue.submit_many(
            [{"name": "debug.sleep", "payload": {"seconds": args.seconds}}] * args.jobs
        )
        peak, last = watch(queue, custom, args.jobs, deadline)
        console.print()
        done = last.completed + last.failed
        console.print(
            f"[bold green]done:[/] {last.completed}/{args.jobs} completed, {last.failed} failed, "
            f"peak {peak} worker pods, now {last.replicas}"
        )
        ok = done >= args.jobs
        if not ok:
            console.print("[yellow]the demo's time ran out before every job finished[/]")
        if args.down:
            step(f"tearing down ({stop_command()})")
            run(*localcluster("down"), timeout=120)
        else:
            look_around(kubeconfig, bin_dir, redis_url, dashboard)
    except DemoError as exc:
        console.print(f"[bold red]demo failed:[/] {exc}")
        console.print(f"logs: {STATE}/logs and kubectl logs; stop with: {stop_command()}")
        return 1
    except KeyboardInterrupt:
        console.print(f"\n[yellow]interrupted[/]; whatever started is still up: {stop_command()}")
        return 130
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
