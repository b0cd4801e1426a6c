"""arq: asyncio, jobs in a sorted set polled every poll_delay (BENCH_VARIANT=tuned: 0.01 s)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker, func

from bench.queues import probe


async def bench_job(ctx: dict[str, Any], payload: dict[str, Any]) -> None:
    await probe.handle_async(payload)


def enqueue(url: str, queue: str, payloads: Iterable[dict[str, Any]]) -> None:
    async def run() -> None:
        pool = await create_pool(RedisSettings.from_dsn(url))
        for p in payloads:
            await pool.enqueue_job("bench_job", p, _queue_name=queue)
        await pool.aclose()

    asyncio.run(run())


def work(url: str, queue: str, concurrency: int) -> None:
    worker = Worker(
        functions=[func(bench_job, name="bench_job")],
        redis_settings=RedisSettings.from_dsn(url),
        queue_name=queue,
        max_jobs=concurrency,
        handle_signals=False,
        **({"poll_delay": 0.01} if os.environ.get("BENCH_VARIANT") == "tuned" else {}),
    )
    worker.run()
