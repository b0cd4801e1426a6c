"""Section 1 of the benchmark: every queue system, then redis-benchmark, into out/queues.json."""

from __future__ import annotations

import os
import shutil
from typing import Any

from bench.queues import harness, redisbench
from bench.queues.harness import Settings, System
from bench.redisserver import redis_server
from bench.venv import ensure_node, ensure_venv, package_versions

QUICK = Settings(
    jobs=1000, latency_samples=100, rtt_jobs=200, step_timeout=60, sleep_jobs=500,
    measure_seconds=5,
)  # fmt: skip
FULL = Settings(
    jobs=20000, latency_samples=1000, rtt_jobs=1000, step_timeout=300, sleep_jobs=5000,
    measure_seconds=60,
)  # fmt: skip

# name, has a bulk enqueue API, concurrency cap
PYTHON_SYSTEMS: list[tuple[str, bool, int | None]] = [
    ("jobqueue", True, None),
    ("bullmq-py", True, None),
    ("saq", False, None),
    ("arq", False, None),
    ("rq", True, 1),
    ("celery", False, None),
    ("dramatiq", False, None),
]
NOTES = {
    "jobqueue": "AsyncQueue.submit / submit_many (chunks of 1000); `jobq worker` in-process",
    "bullmq-node": "BullMQ on Node.js; removeOnComplete count 1000; bulk = addBulk",
    "bullmq-py": "bullmq (Python); removeOnComplete count 1000; bulk = addBulk",
    "saq": "SAQ defaults; Worker(concurrency); no bulk API",
    "arq": "arq defaults (poll_delay 0.5 s, results kept); max_jobs = concurrency; no bulk API",
    "rq": "RQ SimpleWorker: one job at a time (concurrency 1 in every row); bulk = enqueue_many",
    "celery": "Celery, Redis broker, threads pool, no result backend, default prefetch; no bulk",
    "dramatiq": "Dramatiq RedisBroker, one process, worker_threads = concurrency; no bulk API",
}


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


def systems() -> tuple[list[System], dict[str, str]]:
    """The systems that could be set up, and an error per system that could not."""
    failed: dict[str, str] = {}
    found: list[System] = []
    wanted = selected()
    python, message = ensure_venv()
    for name, bulk, cap in PYTHON_SYSTEMS:
        if name not in wanted:
            continue
        if python is None:
            failed[name] = message
            continue
        found.append(
            harness.python_system(name, python, NOTES[name], has_bulk=bulk, max_concurrency=cap)
        )
    if "bullmq-node" not in wanted:
        return found, failed
    node_error = "node not installed" if shutil.which("node") is None else ensure_node()
    if node_error:
        failed["bullmq-node"] = node_error
    else:
        found.insert(1, harness.node_system(NOTES["bullmq-node"]))
    return found, failed


def run(full: bool) -> dict[str, Any]:
    settings = FULL if full else QUICK
    found, failed = systems()
    out: dict[str, Any] = {
        "settings": settings.__dict__,
        "scenarios": harness.SCENARIOS,
        "systems": {},
        "versions": {},
    }
    python, _ = ensure_venv()
    if python is not None:
        out["versions"] = package_versions(python)
    with redis_server() as url:
        for system in found:
            print(f"queues: {system.name}", flush=True)
            out["systems"][system.name] = harness.run_system(system, url, settings)
        for name, error in failed.items():
            out["systems"][name] = {"notes": NOTES[name], "error": error}
        print("queues: redis-benchmark", flush=True)
        out["redis_benchmark"] = redisbench.run(url, 100000 if full else 50000)
    return out
