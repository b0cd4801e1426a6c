"""The two processes of the memory benchmark: `jobq worker` and a client submitting without pause.

    python -m bench.queues.memory_proc worker --url redis://... --queue q --concurrency 100
    python -m bench.queues.memory_proc client --url redis://... --queue q --n 1000000

Both write ``$BENCH_REPORT_DIR/<role>-count.json`` (jobs done or submitted) every 0.1 s and
``<role>-mem.json`` every ``--interval`` seconds from a daemon thread: the count and
``sys.getallocatedblocks()`` (memory blocks alive in Python's allocator: it reads a counter,
and grows by at least one per leaked object). Not ``len(gc.get_objects())``: called from
another thread on Python < 3.13 it can catch a tuple that ``tuple(generator)`` is still
building, whose resize then fails with "SystemError: Objects/tupleobject.c: bad argument to
internal function" (python/cpython#39117, fixed by gh-107137; it broke this benchmark's
client inside redis-py). The RSS is read from outside (/proc). The worker is the benchmark's
`jobq worker` (``systems/jobqueue_sys``: no-op handler; the probe counts finished jobs in
memory).

With ``BENCH_MEMORY_TRACEMALLOC=1`` (slow: for finding a leak, not for the figures) each
process traces allocations and, once it has done ``--n`` jobs, writes the 30 source lines
whose allocations grew most since ``--warm`` jobs to ``<role>-tracemalloc.txt``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.queues.proc import exit_with_parent

TRACE_ENV = "BENCH_MEMORY_TRACEMALLOC"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


class Sampler:
    """Writes this process's own view of its memory every `interval` seconds."""

    def __init__(
        self, role: str, count: Callable[[], int], interval: float, warm: int, total: int
    ) -> None:
        self.directory = Path(os.environ["BENCH_REPORT_DIR"])
        self.role = role
        self.count = count
        self.interval = interval
        self.warm = warm
        self.total = total
        self.tracing = os.environ.get(TRACE_ENV) == "1"
        self._warm_snapshot: tracemalloc.Snapshot | None = None
        self._traced = False

    def start(self) -> None:
        if self.tracing:
            tracemalloc.start(4)
        threading.Thread(target=self._loop, daemon=True).start()

    def sample(self) -> dict[str, Any]:
        return {
            "t": time.time(),
            "count": self.count(),
            "allocated_blocks": sys.getallocatedblocks(),
        }

    def _loop(self) -> None:
        # The count every 0.1 s (the parent pairs it with the RSS it reads), the heavier
        # in-process figures every `interval`.
        path = self.directory / f"{self.role}-mem.json"
        count_path = self.directory / f"{self.role}-count.json"
        next_sample = 0.0
        while True:
            _write_json(count_path, {"t": time.time(), "count": self.count()})
            if time.monotonic() >= next_sample:
                next_sample = time.monotonic() + self.interval
                sample = self.sample()
                _write_json(path, sample)
                if self.tracing:
                    self._trace(sample["count"])
            time.sleep(0.1)

    def _trace(self, count: int) -> None:
        if self._warm_snapshot is None and count >= self.warm:
            self._warm_snapshot = tracemalloc.take_snapshot()
        elif self._warm_snapshot is not None and not self._traced and count >= self.total:
            self._traced = True
            diff = tracemalloc.take_snapshot().compare_to(self._warm_snapshot, "traceback")
            grown = sorted(diff, key=lambda stat: stat.size_diff, reverse=True)[:30]
            lines = [f"{self.role}: allocations grown most from job {self.warm:,} to {count:,}"]
            for stat in grown:
                lines.append(f"{stat.size_diff / 1024:+10.1f} KiB {stat.count_diff:+8d} blocks")
                lines += [f"    {frame}" for frame in stat.traceback.format()]
            (self.directory / f"{self.role}-tracemalloc.txt").write_text("\n".join(lines) + "\n")


def run_worker(args: argparse.Namespace) -> None:
    from bench.queues import probe
    from bench.queues.systems import jobqueue_sys

    def done() -> int:
        return int(probe._state["count"])

    Sampler("worker", done, args.interval, args.warm, args.n).start()
    jobqueue_sys.work(args.url, args.queue, args.concurrency)


class Submitter:
    """Submits `n` no-op jobs as fast as the queue takes them: each round one `submit_many`
    of `batch` jobs, then `singles` one by one with `submit` (both ways a client is used),
    pausing while more than `backlog` jobs wait (so Redis holds the retention it is told to
    keep, not an ever-longer queue). Finished records expire as the queue's settings say."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.submitted = 0

    async def run(self) -> None:
        import jobqueue

        args = self.args
        async with jobqueue.AsyncQueue.from_url(args.url, args.queue) as q:
            await q.configure(result_ttl=args.result_ttl)
            i = 0
            while self.submitted < args.n:
                await self._room(q)
                take = min(args.batch, args.n - self.submitted)
                batch = [{"name": "bench_job", "payload": {"k": "noop", "i": i + j}}
                         for j in range(take)]  # fmt: skip
                await q.submit_many(batch)
                i += take
                self.submitted += take
                for _ in range(min(args.singles, args.n - self.submitted)):
                    await q.submit("bench_job", {"k": "noop", "i": i})
                    i += 1
                    self.submitted += 1

    async def _room(self, q: Any) -> None:
        """Return once at most `backlog` jobs wait (read with the client's own stats call)."""
        for _ in itertools.count():
            if (await q.stats()).queued <= self.args.backlog:
                return
            await asyncio.sleep(0.01)


def run_client(args: argparse.Namespace) -> None:
    submitter = Submitter(args)
    sampler = Sampler("client", lambda: submitter.submitted, args.interval, args.warm, args.n)
    sampler.start()
    asyncio.run(submitter.run())
    # stay until the parent has its last sample (and the tracemalloc diff, when traced)
    while sampler.tracing and not (sampler.directory / "client-tracemalloc.txt").exists():
        time.sleep(0.1)
    _write_json(sampler.directory / "client-mem.json", sampler.sample())


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.queues.memory_proc")
    parser.add_argument("role", choices=["worker", "client"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--n", type=int, required=True, help="jobs in the run")
    parser.add_argument("--warm", type=int, required=True, help="jobs before the warm snapshot")
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--singles", type=int, default=50)
    parser.add_argument("--backlog", type=int, default=5000)
    parser.add_argument("--result-ttl", type=float, default=60.0)
    args = parser.parse_args()
    exit_with_parent()
    if args.role == "worker":
        run_worker(args)
    else:
        run_client(args)


if __name__ == "__main__":
    main()
