"""SAQ: asyncio, Redis lists with BLMOVE dequeue."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from saq import Queue, Worker

from bench.queues import probe


async def bench_job(ctx: dict[str, Any], *, payload: dict[str, Any]) -> None:
    await probe.handle_async(payload)


def enqueue(url: str, queue: str, payloads: Iterable[dict[str, Any]]) -> None:
    async def run() -> None:
        q = Queue.from_url(url, name=queue)
        await q.connect()
        for p in payloads:
            await q.enqueue("bench_job", payload=p)
        await q.disconnect()

    asyncio.run(run())


def work(url: str, queue: str, concurrency: int) -> None:
    async def run() -> None:
        q = Queue.from_url(url, name=queue)
        worker = Worker(q, functions=[bench_job], concurrency=concurrency)
        await worker.start()

    asyncio.run(run())
