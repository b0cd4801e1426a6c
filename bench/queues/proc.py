"""Entry point of one benchmark subprocess: enqueue jobs, send latency probes, or run a worker.

    python -m bench.queues.proc enqueue --system arq --url redis://... --queue q --n 2000 [--bulk]
        [--warmup 500]
    python -m bench.queues.proc latency --system arq ... --n 200 --gap 0.005
    python -m bench.queues.proc worker  --system arq ... --concurrency 10

Runs inside the system's own virtualenv (stdlib + the system's library). Enqueue commands print
one JSON line: {"seconds": elapsed} or {"unsupported": reason}; with --warmup W, W warm-up jobs
(kind ``warm``, no-ops the probe counts apart) go first by the same API, untimed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

MODULES = {
    "jobqueue": "bench.queues.systems.jobqueue_sys",
    "bullmq-py": "bench.queues.systems.bullmq_py",
    "saq": "bench.queues.systems.saq_sys",
    "arq": "bench.queues.systems.arq_sys",
    "rq": "bench.queues.systems.rq_sys",
    "celery": "bench.queues.systems.celery_sys",
    "dramatiq": "bench.queues.systems.dramatiq_sys",
}


def _latency_payloads(n: int, gap: float) -> Iterator[dict[str, Any]]:
    # Stamped as late as possible: just before the library's enqueue call.
    for _ in range(n):
        time.sleep(gap)
        yield {"k": "lat", "t": time.time()}


def exit_with_parent() -> None:
    """A worker outlives nothing: if the harness dies, the worker goes too."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.queues.proc")
    parser.add_argument("role", choices=["enqueue", "latency", "worker"])
    parser.add_argument("--system", required=True, choices=sorted(MODULES))
    parser.add_argument("--url", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--kind", default="noop", choices=["noop", "sleep"])
    parser.add_argument("--bulk", action="store_true")
    parser.add_argument("--gap", type=float, default=0.005)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=0)
    args = parser.parse_args()
    system = importlib.import_module(MODULES[args.system])

    if args.role == "worker":
        exit_with_parent()
        system.work(args.url, args.queue, args.concurrency)
        return
    if args.role == "latency":
        system.enqueue(args.url, args.queue, _latency_payloads(args.n, args.gap))
        print(json.dumps({"seconds": 0.0}))
        return
    payloads = [{"k": args.kind, "i": i} for i in range(args.n)]
    if args.bulk and not hasattr(system, "enqueue_bulk"):
        print(json.dumps({"unsupported": "no bulk enqueue API"}))
        return
    enqueue = system.enqueue_bulk if args.bulk else system.enqueue
    if args.warmup:
        enqueue(args.url, args.queue, [{"k": "warm", "i": i} for i in range(args.warmup)])
    if not payloads:
        print(json.dumps({"seconds": 0.0}))
        return
    start = time.perf_counter()
    enqueue(args.url, args.queue, payloads)
    print(json.dumps({"seconds": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
