"""This project: jobqueue's public AsyncQueue for enqueueing and `jobq worker` for processing."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterable
from typing import Any

import jobqueue

from bench.queues import probe


@jobqueue.task("bench_job")
async def bench_job(ctx: Any, payload: dict[str, Any]) -> None:
    await probe.handle_async(payload)


def enqueue(url: str, queue: str, payloads: Iterable[dict[str, Any]]) -> None:
    async def run() -> None:
        async with jobqueue.AsyncQueue.from_url(url, queue) as q:
            for p in payloads:
                await q.submit("bench_job", p)

    asyncio.run(run())


def enqueue_bulk(url: str, queue: str, payloads: list[dict[str, Any]]) -> None:
    async def run() -> None:
        async with jobqueue.AsyncQueue.from_url(url, queue) as q:
            for start in range(0, len(payloads), 1000):
                chunk = payloads[start : start + 1000]
                await q.submit_many([{"name": "bench_job", "payload": p} for p in chunk])

    asyncio.run(run())


def work(url: str, queue: str, concurrency: int) -> None:
    from jobqueue.cli import main

    os.environ.update(
        JOBQUEUE_REDIS_URL=url,
        JOBQUEUE_QUEUES=queue,
        JOBQUEUE_HANDLERS=__name__,
        JOBQUEUE_CONCURRENCY=str(concurrency),
        JOBQUEUE_METRICS_PORT="0",
        JOBQUEUE_LOG_LEVEL="WARNING",
    )
    sys.argv = ["jobq", "worker"]
    main()
