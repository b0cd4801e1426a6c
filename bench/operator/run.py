"""Section 3 of the benchmark: the real operator against the local control plane (hack/).

- Reaction: a job lands in an empty queue; how long until the worker Deployment's
  spec.replicas changes (the operator polls, decides and patches).
- Scale: N JobQueues (empty queues) under one operator for a window: its CPU (from
  /proc/<pid>/stat), resident memory, the poll-loop lag it reports in /metrics, and the
  Redis commands per second it costs (INFO stats delta).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.redisserver import free_port, redis_server
from bench.venv import ensure_operator_venv

REPO = Path(__file__).resolve().parents[2]
GROUP, VERSION, PLURAL = "jobqueue.dev", "v1alpha1", "jobqueues"
NAMESPACE = "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _manifest(name: str, redis_url: str, **scaling: Any) -> dict[str, Any]:
    # Workers that never take a job: the backlog stays until the benchmark removes it. The
    # pods run on the cluster's real node, from the worker image: `sleep` is in it (the
    # benchmark's own interpreter is not).
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "JobQueue",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "redis": {"url": redis_url},
            "worker": {
                "command": ["sleep", "infinity"],
                "concurrency": 1,
                "terminationGracePeriodSeconds": 1,
            },
            "scaling": {"minReplicas": 0, "maxReplicas": 2, **scaling},
        },
    }


class Cluster:
    """The local control plane in a temporary state dir, plus kubectl and API clients."""

    def __init__(self, state_dir: Path, images: tuple[str, ...] | None = None) -> None:
        """``images``: the node's images to import (None: all of them)."""
        sys.path.insert(0, str(REPO / "hack"))
        from localcluster import cli as localcluster

        self.lc = localcluster
        self.state_dir = state_dir
        extra = {} if images is None else {"images": images}
        self.info = localcluster.up(state_dir, owner_pid=os.getpid(), **extra)
        self.kubeconfig = self.info["kubeconfig"]
        self.env = {
            **os.environ,
            "KUBECONFIG": self.kubeconfig,
            "PATH": f"{self.info['bin_dir']}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        from kubernetes import client, config

        self.api = config.new_client_from_config(config_file=self.kubeconfig)
        self.apps = client.AppsV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 300) -> str:
        res = subprocess.run(
            [str(Path(self.info["bin_dir"]) / "kubectl"), *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if res.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args[:3])} failed: {res.stderr.strip()[-300:]}")
        return res.stdout

    def install_crds(self, namespace: str) -> None:
        """The project's CRDs, established, and ``namespace`` to put JobQueues in."""
        for crd in sorted((REPO / "crds").glob("*.yaml")):
            self.kubectl("apply", "-f", str(crd))
        # Not `kubectl wait --for=condition=Established`: it fails at once, instead of
        # waiting, when asked before the CRD has any status conditions.
        established = '{.status.conditions[?(@.type=="Established")].status}'
        _wait(
            lambda: self.kubectl(
                "get", "crd/jobqueues.jobqueue.dev", "-o", f"jsonpath={established}"
            ).strip() == "True",
            60, "the JobQueue CRD established", 0.2,
        )  # fmt: skip
        self.kubectl("create", "namespace", namespace)

    def close(self) -> None:
        self.api.close()
        self.lc.down(self.state_dir)


@contextlib.contextmanager
def operator_process(
    cluster: Cluster, log: Path, source: Path | None = None, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """The operator as a process; ``source``: a folder holding another jobqueue_operator
    package (an earlier commit's, say) to run instead of the installed one; ``extra_env``:
    settings of its environment (IDLE_POLL_SECONDS=0, say)."""
    metrics_port = free_port()
    env = {
        **cluster.env,
        "WATCH_NAMESPACES": NAMESPACE,
        "LEASE_NAMESPACE": NAMESPACE,  # leader election: one operator, it leads at once
        "METRICS_PORT": str(metrics_port),
        "HEALTH_PORT": "0",
        "PYTHONUNBUFFERED": "1",
        "WORKER_IMAGE": cluster.info["images"]["worker"],
        **(extra_env or {}),
    }
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
    python, message = ensure_operator_venv()
    if python is None:
        raise RuntimeError(message)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(python), "-m", "jobqueue_operator.main"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc, metrics_port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _replicas(cluster: Cluster, name: str) -> int | None:
    from kubernetes.client import ApiException

    try:
        dep = cluster.apps.read_namespaced_deployment(f"{name}-worker", NAMESPACE)
    except ApiException:
        return None
    return int(dep.spec.replicas or 0)


def _wait(predicate: Any, timeout: float, what: str, interval: float = 0.02) -> float:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def reaction(
    cluster: Cluster, redis_url: str, trials: int, poll: float | None = None
) -> dict[str, Any]:
    """Submit one job to an empty queue, time the scale-up, cancel it, wait for zero; repeat.
    ``poll`` sets pollIntervalSeconds (None keeps the default)."""
    import jobqueue

    name = "react" if poll is None else f"react-{str(poll).replace('.', '-')}"
    extra = {} if poll is None else {"pollIntervalSeconds": poll}
    body = _manifest(name, redis_url, scaleDownStabilizationSeconds=0, **extra)
    cluster.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
    _wait(lambda: _replicas(cluster, name) == 0, 120, "the Deployment", 0.2)
    poll = poll or 2.0
    samples: list[float] = []

    async def submit() -> str:
        async with jobqueue.AsyncQueue.from_url(redis_url, name) as q:
            return await q.submit("bench.noop", {})

    async def cancel(job_id: str) -> None:
        async with jobqueue.AsyncQueue.from_url(redis_url, name) as q:
            await q.cancel(job_id)

    for _ in range(trials):
        started = time.monotonic()
        job_id = asyncio.run(submit())
        changed = _wait(lambda: (_replicas(cluster, name) or 0) > 0, 60, "a scale-up")
        samples.append(changed - started)
        asyncio.run(cancel(job_id))
        _wait(lambda: _replicas(cluster, name) == 0, 120, "the scale-down", 0.1)
        time.sleep(0.5)
    cluster.custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    samples.sort()
    return {
        "trials": len(samples),
        "poll_interval": poll,
        "p50": samples[len(samples) // 2],
        "p95": samples[min(len(samples) - 1, int(0.95 * len(samples)))],
        "max": samples[-1],
        "samples": samples,
    }


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _labelled(metrics_port: int, name: str) -> dict[str, float]:
    """Every series of one metric in the operator's /metrics, by its label text."""
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30).text
    out = {}
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")):
            labels, value = line.rsplit(" ", 1)
            out[labels] = float(value)
    return out


def _series(metrics_port: int, name: str) -> list[float]:
    return list(_labelled(metrics_port, name).values())


def _total_polls(metrics_port: int) -> float:
    return sum(_series(metrics_port, "jobqueue_operator_polls_total"))


def _status_writes(metrics_port: int) -> float:
    counts = _labelled(metrics_port, "jobqueue_operator_reconcile_duration_seconds_count")
    return sum(v for k, v in counts.items() if 'step="status"' in k)


LAG_HISTOGRAM = "jobqueue_operator_poll_lag_all_seconds"
SCRAPE_SECONDS = 15.0  # /metrics read during a window (Prometheus' usual interval)
SETTLE_STEP = 5.0  # seconds between poll-rate samples while settling
SETTLE_HOLD = 20.0  # the rate must hold this long
SETTLE_CAP = 120.0  # give up waiting (the window is then measured anyway, and says so)


POLL_SECONDS = 2.0  # the JobQueues' pollIntervalSeconds (the default)


def polls_due(metrics_port: int, count: int, idle_poll_seconds: float) -> tuple[float, int]:
    """Polls per second the operator owes ``count`` JobQueues now, and how many of its loops
    are idle (jobqueue_operator_idle_loops: polled every IDLE_POLL_SECONDS, not every 2 s)."""
    idle = int(sum(_series(metrics_port, "jobqueue_operator_idle_loops")))
    if idle_poll_seconds <= 0:
        return count / POLL_SECONDS, idle
    return (count - idle) / POLL_SECONDS + idle / max(idle_poll_seconds, POLL_SECONDS), idle


def settle(metrics_port: int, count: int, idle_poll_seconds: float) -> tuple[float, bool]:
    """Wait until the operator's poll rate is within 5 % of due for SETTLE_HOLD seconds
    (its start-up rush over), at most SETTLE_CAP. Returns (seconds waited, settled?)."""
    started = time.monotonic()
    held = 0.0
    last, last_t = _total_polls(metrics_port), time.monotonic()
    while time.monotonic() - started < SETTLE_CAP:
        time.sleep(SETTLE_STEP)
        now, total = time.monotonic(), _total_polls(metrics_port)
        rate = (total - last) / (now - last_t)
        due_per_s, _ = polls_due(metrics_port, count, idle_poll_seconds)
        held = held + (now - last_t) if rate >= 0.95 * due_per_s else 0.0
        last, last_t = total, now
        if held >= SETTLE_HOLD:
            return now - started, True
    return time.monotonic() - started, False


def _lag_buckets(metrics_port: int) -> dict[float, float]:
    """The poll-lag histogram over all JobQueues: cumulative count by upper bound."""
    out: dict[float, float] = {}
    for labels, value in _labelled(metrics_port, LAG_HISTOGRAM + "_bucket").items():
        bound = labels.split('le="', 1)[1].split('"', 1)[0]
        out[float(bound)] = value
    return out


def lag_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float | None:
    """The q-quantile of the polls counted between two scrapes of the lag histogram, read
    linearly inside its bucket (as Prometheus' histogram_quantile); None without polls, the
    top finite bound when it falls in the +Inf bucket."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for bound, cumulative in zip(bounds, counts, strict=True):
        if cumulative >= rank:
            if bound == float("inf"):
                return lower
            inside = cumulative - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, cumulative
    return lower


def scale(
    cluster: Cluster,
    redis_url: str,
    pid: int,
    metrics_port: int,
    count: int,
    window: float,
    keep: bool = False,
    profile_to: Path | None = None,
    idle_poll_seconds: float = 30.0,
    memory_to: tuple[Path, Path] | None = None,
) -> dict[str, Any]:
    """``count`` JobQueues for a window. JobQueues left by the row before (``keep``) are
    counted in: only the missing ones are applied. With ``keep`` they stay afterwards (the
    next row grows from them, or the cluster is torn down), else they are deleted."""
    names = [f"q-{i:05d}" for i in range(count)]
    present = {
        item["metadata"]["name"]
        for item in cluster.custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)[
            "items"
        ]
    }
    if len(present - set(names)) > 0:
        raise RuntimeError(f"{len(present - set(names))} JobQueues of another row are left")
    items = [_manifest(n, redis_url) for n in names if n not in present]
    rss_before = _rss_mb(pid)
    started = time.monotonic()
    for first in range(0, len(items), 1000):  # kubectl takes a big List slowly; chunks
        chunk = {"apiVersion": "v1", "kind": "List", "items": items[first : first + 1000]}
        cluster.kubectl("apply", "-f", "-", stdin=json.dumps(chunk))
    expected = {f"{n}-worker" for n in names}

    def all_deployments() -> bool:
        # The raw JSON, names only: 5,000 Deployments made into client models every few
        # seconds cost this harness and the API server more than the operator's own work.
        raw = cluster.apps.list_namespaced_deployment(NAMESPACE, _preload_content=False)
        have = {d["metadata"]["name"] for d in json.loads(raw.data)["items"]}
        return expected <= have

    _wait(all_deployments, 120 + count, f"{count} Deployments", max(2.0, count / 500))
    created = time.monotonic() - started
    settle_s, settled = settle(metrics_port, count, idle_poll_seconds)
    r = redis.Redis.from_url(redis_url)
    cmds0 = int(r.info("stats")["total_commands_processed"])
    polls0 = _labelled(metrics_port, "jobqueue_operator_polls_total")
    writes0 = _status_writes(metrics_port)
    lag0 = _lag_buckets(metrics_port)
    rss_start = _rss_mb(pid)
    cpu0, t0 = _cpu_seconds(pid), time.monotonic()
    load0 = os.getloadavg()
    spy = _py_spy(profile_to, pid)  # steady state only: the window
    lags: list[float] = []
    rss: list[float] = []
    scraped = t0
    while time.monotonic() - t0 < window:
        time.sleep(min(5.0, window / 4))
        rss.append(_rss_mb(pid))
        # A scrape of 1,000 JobQueues' series costs the operator CPU too: at Prometheus'
        # usual interval, not at the RSS sampling's.
        if time.monotonic() - scraped >= SCRAPE_SECONDS:
            scraped = time.monotonic()
            lags += _series(metrics_port, "jobqueue_operator_poll_lag_seconds")
    _stop(spy)
    if memory_to is not None:
        _dump_memory(pid, *memory_to)
    polls1 = _labelled(metrics_port, "jobqueue_operator_polls_total")
    due, idle = polls_due(metrics_port, count, idle_poll_seconds)
    writes = _status_writes(metrics_port) - writes0
    lag1 = _lag_buckets(metrics_port)
    elapsed = time.monotonic() - t0
    cpu = (_cpu_seconds(pid) - cpu0) / elapsed
    load1 = os.getloadavg()
    commands = int(r.info("stats")["total_commands_processed"]) - cmds0
    rss_end = _rss_mb(pid)
    per_queue = sorted(v - polls0.get(k, 0.0) for k, v in polls1.items())
    polls = sum(per_queue)
    polled = sum(1 for d in per_queue if d > 0)
    median = per_queue[len(per_queue) // 2] if per_queue else 0.0
    r.close()
    grown = f" ({count - len(items)} kept from the row before)" if present else ""
    result: dict[str, Any] = {
        "jobqueues": count,
        "cpu_cores": cpu,
        "rss_mb": max(rss) if rss else None,
        "rss_before_mb": rss_before,
        "rss_start_mb": rss_start,
        "rss_end_mb": rss_end,
        "poll_lag_mean": sum(lags) / len(lags) if lags else None,
        "poll_lag_max": max(lags) if lags else None,
        "poll_lag_p99": lag_quantile(lag0, lag1, 0.99),
        "poll_lag_p50": lag_quantile(lag0, lag1, 0.5),
        "redis_commands_per_s": commands / elapsed,
        "redis_commands_per_poll": commands / polls if polls else None,
        "polls_per_s": polls / elapsed,
        "status_writes_per_s": writes / elapsed,
        "expected_polls_per_s": due,
        "idle_loops": idle,
        "window": elapsed,
        "created_s": created,
        "settle_s": settle_s,
        "settled": settled,
        "queues_polled": polled,
        "median_poll_interval": elapsed / median if median else None,
        "load_start": load0,
        "load_end": load1,
        "note": (
            f"all {count} Deployments created {created:.0f} s after kubectl apply{grown}; "
            "poll rate "
            + (
                f"settled {settle_s:.0f} s later"
                if settled
                else f"not settled after {settle_s:.0f} s (measured anyway)"
            )
            + f"; {polled} of {count} queues polled in the window, median interval between polls "
            + (f"{elapsed / median:.1f} s" if median else "n/a (most queues not polled)")
            + f"; {idle} of {count} loops idle at the end (IDLE_POLL_SECONDS "
            + f"{idle_poll_seconds:g})"
        ),
    }
    if keep:
        return result
    # Measured first: a slow clean-up (1,000 finalizers) must not lose the figures.
    deleting = time.monotonic()
    try:
        cluster.kubectl("delete", "jq", "--all", "-n", NAMESPACE, "--wait=true", timeout=300)
        result["delete_s"] = time.monotonic() - deleting
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        result["note"] += f"; deleting the JobQueues did not finish: {str(exc)[:200]}"
    return result


def run(
    full: bool,
    counts: list[int] | None = None,
    window: float | None = None,
    *,
    scale_only: bool = False,
    profile_dir: Path | None = None,
    operator_source: Path | None = None,
    operator_env: dict[str, str] | None = None,
    memory_dir: Path | None = None,
) -> dict[str, Any]:
    """The section: reaction rows then scale rows (``scale_only``: the scale rows alone,
    each row growing from the one before when it is larger, nothing deleted at the end).
    ``profile_dir``: py-spy samples the operator through each scale row's window
    (operator-<count>.txt, collapsed stacks). ``operator_source``: see operator_process."""
    sys.path.insert(0, str(REPO / "hack"))
    try:
        from localcluster import cli as localcluster
    except ImportError as exc:
        return {"skipped": f"hack/localcluster not importable: {exc}"}
    missing = localcluster.missing_binaries(localcluster.default_bin_dir())
    if missing:
        return {"skipped": f"Kubernetes binaries missing ({', '.join(missing)}): run make tools"}
    counts = counts or ([10, 100, 1000] if full else [10, 100])
    seconds = window or (60 if full else 30)
    out: dict[str, Any] = {"scale": []}
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp, redis_server() as url:
        print("operator: starting the local cluster", flush=True)
        cluster = Cluster(Path(tmp) / "state")
        try:
            cluster.install_crds(NAMESPACE)
            log = Path(tmp) / "operator.log"
            env = dict(operator_env or {})
            dump = Path(tmp) / "allocations.txt"
            if memory_dir is not None:
                env.update(memtrace_env(dump))
            idle_poll = float(env.get("IDLE_POLL_SECONDS", "30"))
            with operator_process(cluster, log, operator_source, env) as (proc, metrics_port):
                try:
                    if not scale_only:
                        print("operator: reaction time", flush=True)
                        out["reaction"] = reaction(cluster, url, 30 if full else 10)
                        out["reaction_fast_poll"] = reaction(cluster, url, 30 if full else 10, 0.5)
                    for i, count in enumerate(counts):
                        after = counts[i + 1] if i + 1 < len(counts) else None
                        # Kept when the next row grows from them, or (scale_only) at the end.
                        keep = (after is not None and after >= count) or (
                            after is None and scale_only
                        )
                        print(f"operator: {count} JobQueues", flush=True)
                        profile_to = profile_dir / f"operator-{count}.txt" if profile_dir else None
                        out["scale"].append(
                            scale(cluster, url, proc.pid, metrics_port, count, seconds, keep,
                                  profile_to, idle_poll,
                                  (dump, memory_dir / f"memory-{count}.txt") if memory_dir
                                  else None)
                        )  # fmt: skip
                except (TimeoutError, RuntimeError) as exc:
                    tail = log.read_text(errors="replace")[-1500:]
                    out["error"] = f"{exc}; operator log tail: {tail}"
            if profile_dir is not None:
                shutil.copy(log, profile_dir / "operator.log")
        finally:
            cluster.close()
    return out


MEMTRACE = Path(__file__).resolve().parent / "memtrace"  # a sitecustomize: see its docstring


def memtrace_env(dump: Path) -> dict[str, str]:
    """The operator's environment for tracing its allocations (memtrace/sitecustomize.py)."""
    return {"PYTHONPATH": str(MEMTRACE), "JOBQUEUE_BENCH_TRACEMALLOC": str(dump)}


def _dump_memory(pid: int, dump: Path, to: Path) -> None:
    """Have the operator write its live allocations to ``dump`` (SIGUSR2); keep them as
    ``to``."""
    dump.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR2)
    _wait(dump.exists, 300, "the operator's allocation dump", 1.0)
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(dump, to)


def _py_spy(profile_to: Path | None, pid: int) -> subprocess.Popen[bytes] | None:
    """py-spy sampling the operator (raw collapsed stacks, without pausing it) until
    SIGINT; None when not asked for."""
    if profile_to is None:
        return None
    profile_to.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        ["py-spy", "record", "--nonblocking", "--format", "raw", "--rate", "50",
         "-o", str(profile_to), "-p", str(pid)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _stop(spy: subprocess.Popen[bytes] | None) -> None:
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
