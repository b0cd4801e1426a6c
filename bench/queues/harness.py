"""Runs every queue system through the same scenarios, each step in a bounded subprocess.

A system that fails to start or times out gets an error in its row; the run goes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from bench.queues.monitor import CommandCounter
from bench.venv import BENCH_DIR, NODE_DIR

REPO = BENCH_DIR.parent


class StepFailed(Exception):
    """A scenario step failed or ran out of time; the message says which and why."""


@dataclass(frozen=True)
class Settings:
    jobs: int  # jobs per throughput scenario
    latency_samples: int
    rtt_jobs: int
    step_timeout: float  # seconds for one scenario
    sleep_jobs: int  # jobs for the 10 ms sleep scenarios
    measure_seconds: float  # a processing row stops counting after this (slow systems)
    # No-op jobs every worker runs before the measured ones (and every client sends before its
    # timed ones), so a runtime that compiles as it goes (Node's JIT) is measured warm.
    warmup: int = 0


@dataclass
class System:
    name: str
    argv: list[str]  # command prefix; a role and its options follow
    notes: str
    env: dict[str, str] = field(default_factory=dict)
    has_bulk: bool = True
    max_concurrency: int | None = None  # RQ SimpleWorker runs one job at a time


def python_system(
    name: str,
    python: Path,
    notes: str,
    *,
    module: str,
    has_bulk: bool,
    variant: str = "",
    **kw: Any,
) -> System:
    """A Python system run by ``python`` (its own virtualenv) through bench.queues.proc with
    the adapter ``module``; ``variant`` (env BENCH_VARIANT) selects a tuning of that adapter."""
    return System(
        name,
        [str(python), "-m", "bench.queues.proc"],
        notes,
        env={"PYTHONPATH": str(REPO), "BENCH_VARIANT": variant, "BENCH_MODULE": module},
        has_bulk=has_bulk,
        **kw,
    )


def node_system(notes: str) -> System:
    return System("bullmq-node", ["node", str(NODE_DIR / "bench.mjs")], notes)


class Runner:
    """Runs scenarios of one system against one redis-server."""

    def __init__(self, system: System, url: str, settings: Settings) -> None:
        self.system = system
        self.url = url
        self.settings = settings
        self.redis = redis.Redis.from_url(url)
        self.queue = "bench"

    # -- subprocess plumbing -------------------------------------------------------------
    def _argv(self, role: str, *options: str) -> list[str]:
        argv = [*self.system.argv, role]
        if self.system.argv[0] != "node":
            argv += ["--system", self.system.env["BENCH_MODULE"]]
        return [*argv, "--url", self.url, "--queue", self.queue, *options]

    def _env(self, report_dir: str) -> dict[str, str]:
        return {**os.environ, **self.system.env, "BENCH_REPORT_DIR": report_dir}

    def _run_client(self, role: str, *options: str, report_dir: str = "") -> dict[str, Any]:
        try:
            res = subprocess.run(
                self._argv(role, *options),
                env=self._env(report_dir),
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=self.settings.step_timeout,
            )
        except subprocess.TimeoutExpired:
            raise StepFailed(f"{role} timed out after {self.settings.step_timeout:.0f} s") from None
        if res.returncode != 0:
            tail = (res.stderr.strip().splitlines() or ["no output"])[-1]
            raise StepFailed(f"{role} exited {res.returncode}: {tail[:200]}")
        try:
            result: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise StepFailed(f"{role} printed no result: {res.stdout[-200:]!r}") from None
        return result

    @contextlib.contextmanager
    def _workers(self, count: int, concurrency: int) -> Iterator[str]:
        report_dir = tempfile.mkdtemp(prefix="bench-report-")
        procs: list[subprocess.Popen[bytes]] = []
        with contextlib.ExitStack() as stack:
            stack.callback(shutil.rmtree, report_dir, ignore_errors=True)
            self._logs = [stack.enter_context(tempfile.TemporaryFile()) for _ in range(count)]
            stack.callback(self._kill, procs)
            for log in self._logs:
                procs.append(
                    subprocess.Popen(
                        self._argv("worker", "--concurrency", str(concurrency)),
                        env=self._env(report_dir),
                        cwd=REPO,
                        stdout=log,
                        stderr=log,
                        start_new_session=True,
                    )
                )
            self._procs = procs
            yield report_dir

    @staticmethod
    def _kill(procs: list[subprocess.Popen[bytes]]) -> None:
        # SIGKILL to the whole session: graceful shutdown is not what is measured.
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def _reports(self, report_dir: str) -> list[dict[str, Any]]:
        out = []
        for name in os.listdir(report_dir):
            if name.endswith(".json"):
                with contextlib.suppress(OSError, ValueError), open(Path(report_dir, name)) as fh:
                    out.append(json.load(fh))
        return out

    def _wait_done(
        self,
        report_dir: str,
        total: int,
        enough_after: float | None = None,
        counter: str = "count",
    ) -> list[dict[str, Any]]:
        """Reports once `total` jobs are done (`counter` "warm": warm-up jobs); with
        `enough_after`, also once that many seconds have passed since the first measured job
        started (a slow system's rate is then measured on the jobs done so far)."""
        deadline = time.monotonic() + self.settings.step_timeout
        while True:
            reports = self._reports(report_dir)
            if sum(r.get(counter, 0) for r in reports) >= total:
                return reports
            starts = [r["first_start"] for r in reports if r["first_start"] is not None]
            if enough_after is not None and starts and time.time() - min(starts) > enough_after:
                return reports
            for proc, log in zip(self._procs, self._logs, strict=True):
                if proc.poll() is not None:
                    log.seek(0)
                    tail = (log.read().decode(errors="replace").strip().splitlines() or ["?"])[-1]
                    raise StepFailed(f"worker exited {proc.returncode}: {tail[:200]}")
            if time.monotonic() > deadline:
                done = sum(r["count"] for r in reports)
                raise StepFailed(
                    f"only {done}/{total} jobs done within {self.settings.step_timeout:.0f} s"
                )
            time.sleep(0.02)

    def _fresh(self) -> None:
        self.redis.flushall()

    # -- scenarios -----------------------------------------------------------------------
    def enqueue_rate(self, bulk: bool) -> float | str:
        if bulk and not self.system.has_bulk:
            return "n/a"
        self._fresh()
        n = self.settings.jobs
        warm = ["--warmup", str(self.settings.warmup)]
        res = self._run_client("enqueue", "--n", str(n), *warm, *(["--bulk"] if bulk else []))
        if "unsupported" in res:
            return "n/a"
        return n / float(res["seconds"])

    def process_rate(self, kind: str, concurrency: int, processes: int) -> float:
        self._fresh()
        n = self.settings.jobs if kind == "noop" else self.settings.sleep_jobs
        bulk = ["--bulk"] if self.system.has_bulk else []
        warm = ["--warmup", str(self.settings.warmup)]
        self._run_client("enqueue", "--n", str(n), "--kind", kind, *warm, *bulk)
        with self._workers(processes, concurrency) as report_dir:
            reports = self._wait_done(report_dir, n, self.settings.measure_seconds)
        first = min(r["first_start"] for r in reports if r["first_start"] is not None)
        last = max(r["last_end"] for r in reports if r["last_end"] is not None)
        return sum(r["count"] for r in reports) / max(last - first, 1e-9)

    def latency(self) -> dict[str, float]:
        self._fresh()
        m = self.settings.latency_samples
        with self._workers(1, 10) as report_dir:
            self._run_client("enqueue", "--n", "1", report_dir=report_dir)  # wait for readiness
            self._wait_done(report_dir, 1)
            if self.settings.warmup:
                bulk = ["--bulk"] if self.system.has_bulk else []
                warm = ["--n", "0", "--warmup", str(self.settings.warmup), *bulk]
                self._run_client("enqueue", *warm)
                self._wait_done(report_dir, self.settings.warmup, counter="warm")
            self._run_client("latency", "--n", str(m), "--gap", "0.005", report_dir=report_dir)
            reports = self._wait_done(report_dir, 1 + m)
        samples = sorted(x for r in reports for x in r["latencies"])
        return {
            "p50_ms": 1000 * samples[len(samples) // 2],
            "p99_ms": 1000 * samples[min(len(samples) - 1, int(len(samples) * 0.99))],
            "samples": len(samples),
        }

    def round_trips(self) -> dict[str, float]:
        """Client commands per job for one-by-one enqueue and for processing (MONITOR run)."""
        self._fresh()
        n = self.settings.rtt_jobs
        counter = CommandCounter(self.url)
        try:
            time.sleep(0.1)
            counter.take()
            self._run_client("enqueue", "--n", str(n))
            time.sleep(0.2)
            enq_client, enq_script = counter.take()
            with self._workers(1, 10) as report_dir:
                self._wait_done(report_dir, n)
                work_client, work_script = counter.take()
        finally:
            counter.close()
        return {
            "enqueue_client_cmds_per_job": enq_client / n,
            "enqueue_script_cmds_per_job": enq_script / n,
            "process_client_cmds_per_job": work_client / n,
            "process_script_cmds_per_job": work_script / n,
        }


SCENARIOS: list[tuple[str, str]] = [
    ("enqueue_single", "enqueue one by one (jobs/s)"),
    ("enqueue_bulk", "enqueue in bulk (jobs/s)"),
    ("noop_c10", "no-op, 1 process, concurrency 10 (jobs/s)"),
    ("noop_c100", "no-op, 1 process, concurrency 100 (jobs/s)"),
    ("noop_2x10", "no-op, 2 processes x concurrency 10 (jobs/s)"),
    ("sleep_c10", "10 ms sleep, 1 process, concurrency 10 (jobs/s)"),
    ("sleep_c100", "10 ms sleep, 1 process, concurrency 100 (jobs/s)"),
    ("latency", "enqueue-to-start latency, idle worker"),
    ("round_trips", "Redis commands per job (MONITOR)"),
]


def run_system(
    system: System, url: str, settings: Settings, only: set[str] | None = None
) -> dict[str, Any]:
    """All scenarios for one system; each result is a number, a dict, or an error string."""
    runner = Runner(system, url, settings)
    conc = system.max_concurrency
    steps = {
        "enqueue_single": lambda: runner.enqueue_rate(bulk=False),
        "enqueue_bulk": lambda: runner.enqueue_rate(bulk=True),
        "noop_c10": lambda: runner.process_rate("noop", conc or 10, 1),
        "noop_c100": lambda: runner.process_rate("noop", conc or 100, 1),
        "noop_2x10": lambda: runner.process_rate("noop", conc or 10, 2),
        "sleep_c10": lambda: runner.process_rate("sleep", conc or 10, 1),
        "sleep_c100": lambda: runner.process_rate("sleep", conc or 100, 1),
        "latency": runner.latency,
        "round_trips": runner.round_trips,
    }
    results: dict[str, Any] = {"notes": system.notes}
    failures = 0
    for key, step in steps.items():
        if only is not None and key not in only:
            continue
        if failures >= 2:  # a broken system must not cost a timeout per scenario
            results[key] = "skipped after two failures"
            continue
        started = time.monotonic()
        try:
            results[key] = step()
        except StepFailed as exc:
            results[key] = f"failed: {exc}"
        except redis.RedisError as exc:
            results[key] = f"failed: redis error {exc}"
        failures = failures + 1 if str(results[key]).startswith("failed") else 0
        # the machine is shared: each figure keeps the 1-minute load average it was taken at
        results.setdefault("load", {})[key] = round(os.getloadavg()[0], 2)
        took = time.monotonic() - started
        print(f"  {system.name:12s} {key:15s} {_short(results[key])}  ({took:.1f} s)", flush=True)
    return results


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v:.3g}" for k, v in value.items())
    return str(value)[:120]
