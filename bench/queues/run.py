"""Section 1 of the benchmark: every queue system, then redis-benchmark, into out/queues.json."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.queues import harness, redisbench
from bench.queues.harness import Settings, System
from bench.redisserver import redis_server
from bench.venv import ensure_node, ensure_system_venv, node_versions, package_versions

# Warm-up: every worker runs `warmup` no-op jobs before the measured ones and every client sends
# `warmup` before its timed ones (BullMQ on Node is 2-3x slower while its JIT is cold: 1,000 cold
# jobs flattered us 2.8x where 20,000 showed 0.98x). Quick mode is small but warm too, so its
# ratios flatter nobody; its figures are only noisier.
QUICK = Settings(
    jobs=2000, latency_samples=200, rtt_jobs=200, step_timeout=90, sleep_jobs=500,
    measure_seconds=5, warmup=2000,
)  # fmt: skip
FULL = Settings(
    jobs=20000, latency_samples=1000, rtt_jobs=1000, step_timeout=300, sleep_jobs=5000,
    measure_seconds=60, warmup=5000,
)  # fmt: skip


@dataclass(frozen=True)
class Entry:
    """One row of the table: a system at its defaults or at one documented tuning."""

    name: str
    module: str  # adapter in bench.queues.systems (bench.queues.proc --system)
    notes: str
    requirements: str | None = None  # bench/requirements/<this>.txt; None: the project's venv
    variant: str = ""  # BENCH_VARIANT read by the adapter
    has_bulk: bool = False
    max_concurrency: int | None = None


ENTRIES = [
    Entry("jobqueue", "jobqueue",
          "AsyncQueue.submit / submit_many (chunks of 1000); `jobq worker` in-process, uvloop "
          "(its default); the project's virtualenv", has_bulk=True),
    Entry("bullmq-py", "bullmq-py",
          "bullmq (Python); removeOnComplete count 1000; Worker(concurrency); bulk = addBulk",
          "bullmq-py", has_bulk=True),
    Entry("saq", "saq", "SAQ defaults; Worker(concurrency); no bulk API", "saq"),
    Entry("arq", "arq",
          "arq defaults (poll_delay 0.5 s, results kept); max_jobs = concurrency; no bulk API",
          "arq"),
    Entry("arq-tuned", "arq",
          "arq tuned: poll_delay 0.01 s (its documented knob for latency), results kept; "
          "max_jobs = concurrency", "arq", variant="tuned"),
    Entry("rq", "rq",
          "RQ SimpleWorker: one job at a time (concurrency 1 in every row); bulk = enqueue_many",
          "rq", has_bulk=True, max_concurrency=1),
    Entry("celery", "celery",
          "Celery, Redis broker, threads pool (concurrency = threads), default prefetch "
          "multiplier 4, no result backend; no bulk API", "celery"),
    Entry("celery-prefetch", "celery",
          "Celery tuned for many short tasks: threads pool, worker_prefetch_multiplier 64 "
          "(the docs' advice for short tasks)", "celery", variant="prefetch"),
    Entry("celery-prefork", "celery",
          "Celery's default pool, prefork: concurrency = child processes (at most 10 on this "
          "2-core machine; the c100 row runs 10), default prefetch", "celery",
          variant="prefork"),
    Entry("dramatiq", "dramatiq",
          "Dramatiq RedisBroker; one process x worker_threads = concurrency (the 2-process row "
          "is its processes x threads); no bulk API", "dramatiq"),
]  # fmt: skip
NODE_NOTES = (
    "BullMQ on Node.js (ioredis); removeOnComplete count 1000; Worker concurrency = the row's "
    "(BullMQ's tuning knob); bulk = addBulk"
)
NOTES = {e.name: e.notes for e in ENTRIES} | {"bullmq-node": NODE_NOTES}


def selected() -> set[str]:
    """Systems to run: all, or those named in $BENCH_SYSTEMS (comma-separated), for quick
    loops while working on one system (e.g. BENCH_SYSTEMS=jobqueue,bullmq-node)."""
    names = {n.strip() for n in os.environ.get("BENCH_SYSTEMS", "").split(",") if n.strip()}
    unknown = names - set(NOTES)
    if unknown:
        raise SystemExit(
            f"BENCH_SYSTEMS names unknown systems {sorted(unknown)}; known: {sorted(NOTES)}"
        )
    return names or set(NOTES)


def systems() -> tuple[list[System], dict[str, str], dict[str, dict[str, str]]]:
    """The systems that could be set up, an error per system that could not, and the library
    versions each runs with (read from its own virtualenv)."""
    failed: dict[str, str] = {}
    found: list[System] = []
    versions: dict[str, dict[str, str]] = {}
    wanted = selected()
    for entry in ENTRIES:
        if entry.name not in wanted:
            continue
        if entry.requirements is None:
            python: Path | None = Path(sys.executable)
            names = ["jobqueue-operator", "redis", "hiredis", "uvloop"]
        else:
            python, message = ensure_system_venv(entry.requirements)
            names = [entry.module.removesuffix("-py"), "redis", "hiredis"]
            if entry.module == "celery":
                names.insert(1, "kombu")
            if python is None:
                failed[entry.name] = message
                continue
        versions[entry.name] = package_versions(python, names)
        found.append(
            harness.python_system(
                entry.name,
                python,
                entry.notes,
                module=entry.module,
                has_bulk=entry.has_bulk,
                variant=entry.variant,
                max_concurrency=entry.max_concurrency,
            )
        )
    if "bullmq-node" not in wanted:
        return found, failed, versions
    node_error = "node not installed" if shutil.which("node") is None else ensure_node()
    if node_error:
        failed["bullmq-node"] = node_error
    else:
        found.insert(1, harness.node_system(NODE_NOTES))
        versions["bullmq-node"] = node_versions()
    return found, failed, versions


def scenarios() -> set[str] | None:
    """Scenarios to run: all, or those named in $BENCH_SCENARIOS (comma-separated)."""
    names = {n.strip() for n in os.environ.get("BENCH_SCENARIOS", "").split(",") if n.strip()}
    known = {key for key, _ in harness.SCENARIOS}
    if names - known:
        raise SystemExit(f"BENCH_SCENARIOS names unknown scenarios {sorted(names - known)}")
    return names or None


def run(full: bool) -> dict[str, Any]:
    settings = FULL if full else QUICK
    found, failed, versions = systems()
    only = scenarios()
    out: dict[str, Any] = {
        "settings": settings.__dict__,
        "scenarios": harness.SCENARIOS,
        "systems": {},
        "versions": versions,
    }
    with redis_server() as url:
        for system in found:
            print(f"queues: {system.name}", flush=True)
            out["systems"][system.name] = harness.run_system(system, url, settings, only)
        for name, error in failed.items():
            out["systems"][name] = {"notes": NOTES[name], "error": error}
        if only is None:
            print("queues: redis-benchmark", flush=True)
            out["redis_benchmark"] = redisbench.run(url, 100000 if full else 50000)
    return out
