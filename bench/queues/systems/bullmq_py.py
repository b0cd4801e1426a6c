"""bullmq, the Python port: BullMQ's own Lua scripts driven from asyncio."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from bullmq import Queue, Worker

from bench.queues import probe

_OPTS = {"removeOnComplete": {"count": 1000}}


async def _process(job: Any, token: str) -> None:
    await probe.handle_async(job.data)


def enqueue(url: str, queue: str, payloads: Iterable[dict[str, Any]]) -> None:
    async def run() -> None:
        q = Queue(queue, {"connection": url})
        for p in payloads:
            await q.add("bench_job", p, _OPTS)
        await q.close()

    asyncio.run(run())


def enqueue_bulk(url: str, queue: str, payloads: list[dict[str, Any]]) -> None:
    async def run() -> None:
        q = Queue(queue, {"connection": url})
        for start in range(0, len(payloads), 1000):
            chunk = payloads[start : start + 1000]
            await q.addBulk([{"name": "bench_job", "data": p, "opts": _OPTS} for p in chunk])
        await q.close()

    asyncio.run(run())


def work(url: str, queue: str, concurrency: int) -> None:
    async def run() -> None:
        Worker(queue, _process, {"connection": url, "concurrency": concurrency})
        await asyncio.Event().wait()

    asyncio.run(run())
