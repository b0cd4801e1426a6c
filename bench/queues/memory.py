"""Memory under sustained load: one `jobq worker` at concurrency 100 and one client submitting
without pause, for 1,000,000 jobs (issue 20); RSS must stay flat after warm-up.

    python -m bench.queues.memory [--jobs 1000000] [--interval 2] [--out bench/out/memory.json]
    python -m bench --full --sections memory       # the same, as a section of `make bench-full`
    BENCH_MEMORY_TRACEMALLOC=1 python -m bench.queues.memory --jobs 200000   # find a leak

A redis-server on loopback (no persistence), the worker (the benchmark's no-op handler) and the
client (`memory_proc.py`) in their own processes. Every `interval` seconds the harness reads
each process's VmRSS from /proc/<pid>/status and the count of jobs it has done or submitted,
the processes report their allocated blocks (``sys.getallocatedblocks()``), and Redis's
used_memory, key count, kept completed records and take journals are read. The client sets
the queue's ``result_ttl`` to 60 s, as a user of fire-and-forget jobs would, and keeps the
default retention (10,000 completed jobs in the index): Redis must plateau too.
`memory_summary.py` computes warm-up (after the first 10 % of the jobs), end, max, slope per
100,000 jobs and the flat verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from jobqueue.protocol.keys import QueueKeys

from bench import machine, report
from bench.queues import memory_summary
from bench.queues.harness import REPO
from bench.queues.memory_proc import TRACE_ENV
from bench.redisserver import redis_server

FULL_JOBS = 1_000_000
QUICK_JOBS = 100_000
QUEUE = "memory"
OUT = REPO / "bench" / "out"


def rss_mb(pid: int) -> float | None:
    """VmRSS of a live process in MB (10^6 bytes), None once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data


class Run:
    """One run's processes and the samples taken of them."""

    def __init__(self, url: str, report_dir: Path, jobs: int, interval: float, **opts: Any):
        self.url = url
        self.report_dir = report_dir
        self.jobs = jobs
        self.interval = interval
        self.opts = {"concurrency": 100, "batch": 500, "singles": 50, "backlog": 5000,
                     "result_ttl": 60.0, **opts}  # fmt: skip
        self.redis = redis.Redis.from_url(url)
        self.keys = QueueKeys(QUEUE)
        self.samples: dict[str, list[dict[str, Any]]] = {"worker": [], "client": [], "redis": []}
        self.loads: list[float] = []
        self.seen_inproc: dict[str, float] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def _start(self, role: str) -> None:
        o = self.opts
        args = [sys.executable, "-m", "bench.queues.memory_proc", role, "--url", self.url,
                "--queue", QUEUE, "--n", str(self.jobs),
                "--warm", str(int(memory_summary.WARM_FRACTION * self.jobs)),
                "--interval", str(self.interval), "--concurrency", str(o["concurrency"]),
                "--batch", str(o["batch"]), "--singles", str(o["singles"]),
                "--backlog", str(o["backlog"]), "--result-ttl", str(o["result_ttl"])]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(REPO), "BENCH_REPORT_DIR": str(self.report_dir)}
        self.procs[role] = subprocess.Popen(args, env=env, cwd=REPO)

    def _count(self, role: str) -> int | None:
        if role == "worker":  # the probe's file: updated every 50 ms
            probe = _read(self.report_dir / f"{self.procs[role].pid}.json")
            if probe is not None:
                return int(probe["count"])
        count = _read(self.report_dir / f"{role}-count.json")
        return None if count is None else int(count["count"])

    def sample(self) -> int:
        """Take one sample of every process; returns the jobs the worker has done."""
        now = time.time()
        for role, proc in self.procs.items():
            rss = rss_mb(proc.pid)
            count = self._count(role)
            if rss is not None and count is not None and proc.poll() is None:
                self.samples[role].append({"t": now, "count": count, "rss_mb": rss})
            inproc = _read(self.report_dir / f"{role}-mem.json")
            if inproc and inproc["t"] != self.seen_inproc.get(role):
                self.seen_inproc[role] = inproc["t"]
                self.samples[role].append(inproc)
        done = self._count("worker") or 0
        info = self.redis.info("memory")
        # what makes up the keys: job records kept (the completed index's length) and the
        # take journals (kept for a lease so a lost reply can be recovered: their number
        # follows the rate of take calls, not the jobs done)
        journals = self.redis.scan_iter(match=self.keys.journal("*"), count=1000)
        self.samples["redis"].append({
            "t": now, "count": done, "used_memory_mb": info["used_memory"] / 1e6,
            "keys": self.redis.dbsize(), "journals": sum(1 for _ in journals),
            "completed_kept": self.redis.zcard(self.keys.key("completed")),
        })  # fmt: skip
        self.loads.append(os.getloadavg()[0])
        return done

    def run(self) -> float:
        """Start the worker, then the client; sample until every job is done; returns the
        seconds from the client's start to the last job."""
        self._start("worker")
        deadline = time.monotonic() + 60
        while self._count("worker") is None and _read(self.report_dir / "worker-mem.json") is None:
            if time.monotonic() > deadline or self.procs["worker"].poll() is not None:
                raise RuntimeError("the worker did not start")
            time.sleep(0.05)
        started = time.monotonic()
        self._start("client")
        limit = started + 120 + self.jobs / 200  # far beyond any rate seen; never a hang
        try:
            while self.sample() < self.jobs:
                for role, proc in self.procs.items():
                    if proc.poll() not in (None, 0) or (role == "worker" and proc.poll() == 0):
                        raise RuntimeError(f"the {role} exited with {proc.returncode}")
                if time.monotonic() > limit:
                    raise RuntimeError(f"timed out with {self._count('worker')} jobs done")
                time.sleep(self.interval)
            seconds = time.monotonic() - started
            time.sleep(min(self.interval, 1.0))  # the in-process figures of the last jobs
            self.sample()
            if os.environ.get(TRACE_ENV) == "1":  # the diff is written one interval after
                traced = self.report_dir / "worker-tracemalloc.txt"
                wait_until = time.monotonic() + 60 + 2 * self.interval
                while not traced.exists() and time.monotonic() < wait_until:
                    time.sleep(0.2)
            return seconds
        finally:
            self.stop()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_memory(jobs: int, interval: float, **opts: Any) -> dict[str, Any]:
    """Run once on a fresh redis-server; returns the settings, samples and summaries."""
    load_start = os.getloadavg()
    with redis_server() as url, tempfile.TemporaryDirectory(prefix="bench-mem-") as tmp:
        run = Run(url, Path(tmp), jobs, interval, **opts)
        seconds = run.run()
        traces = {p.stem: p.read_text() for p in Path(tmp).glob("*-tracemalloc.txt")}
    out: dict[str, Any] = {
        "settings": {
            "jobs": jobs,
            "interval": interval,
            **run.opts,
            "warm_fraction": memory_summary.WARM_FRACTION,
            "flat_mb": memory_summary.FLAT_MB,
            "flat_relative": memory_summary.FLAT_RELATIVE,
        },
        "seconds": round(seconds, 1),
        "rate": round(jobs / seconds, 1),
        "load": {
            "start": load_start,
            "end": os.getloadavg(),
            "min_1m": min(run.loads),
            "max_1m": max(run.loads),
        },
    }
    for role in ("worker", "client"):
        samples = run.samples[role]
        out[role] = {"summary": memory_summary.summarize(samples, jobs), "samples": samples}
    redis_samples = run.samples["redis"]
    out["redis"] = {
        "summary": {
            key: memory_summary.series(redis_samples, key, jobs)
            for key in ("used_memory_mb", "keys", "completed_kept", "journals")
        },
        "samples": redis_samples,
    }
    if traces:
        out["tracemalloc"] = traces
    return out


def run(full: bool) -> dict[str, Any]:
    """The `memory` section of `python -m bench`."""
    if full:
        return run_memory(FULL_JOBS, 2.0)
    return run_memory(QUICK_JOBS, 0.5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.queues.memory", description=__doc__)
    parser.add_argument("--jobs", type=int, default=FULL_JOBS)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between samples")
    parser.add_argument(
        "--out",
        default=str(OUT / "memory.json"),
        help="the default is the `memory` section's JSON, and RESULTS.md is re-rendered",
    )
    args = parser.parse_args(argv)
    command = "python -m bench.queues.memory " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    meta = {
        "command": command.strip(),
        "mode": "full" if args.jobs >= FULL_JOBS else "quick",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine.describe(),
    }
    started = time.monotonic()
    result = run_memory(args.jobs, args.interval)
    result["meta"] = {**meta, "seconds": round(time.monotonic() - started, 1)}
    out = Path(args.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    brief = {k: v for k, v in result.items() if k not in ("worker", "client", "redis")}
    brief |= {role: result[role]["summary"] for role in ("worker", "client", "redis")}
    print(json.dumps(brief, indent=1))
    if out == (OUT / "memory.json").resolve():
        print(f"wrote {report.write(OUT, OUT.parent)}", flush=True)


if __name__ == "__main__":
    main()
