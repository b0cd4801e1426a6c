"""Helpers for worker tests: an in-process worker on the test's redis-server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from jobqueue.client import AsyncQueue
from jobqueue.connection import connect
from jobqueue.models import Job, JobState
from jobqueue.registry import Registry
from jobqueue.runtime.metrics import WorkerMetrics
from jobqueue.runtime.redis_backend import RedisBackend
from jobqueue.runtime.settings import WorkerSettings
from jobqueue.runtime.worker import Worker
from redis.asyncio import Redis
from redis.asyncio.connection import ConnectionPool


@dataclass
class RunningWorker:
    worker: Worker
    task: asyncio.Task[None]
    metrics: WorkerMetrics

    async def stop(self, grace: float = 30.0) -> None:
        self.worker.stop()
        await asyncio.wait_for(asyncio.shield(self.task), grace)


StartWorker = Callable[..., Awaitable[RunningWorker]]


def long_timeout_client(url: str) -> Redis:
    """A client whose socket timeout outlasts the client's 5 s XREAD BLOCK in ``wait``
    (redis-py's default of 5 s would cut it; see CliState.connect)."""
    pool = ConnectionPool.from_url(url, decode_responses=True, socket_timeout=30.0)
    return Redis.from_pool(pool)


@pytest.fixture
async def queue(redis_url: str) -> AsyncIterator[AsyncQueue]:
    client = long_timeout_client(redis_url)
    yield AsyncQueue("work", redis=client)
    await client.aclose()


@pytest.fixture
async def start_worker(redis_url: str) -> AsyncIterator[StartWorker]:
    """Start in-process workers on queue ``work``; all are stopped at teardown."""
    started: list[RunningWorker] = []
    clients: list[Any] = []

    async def start(registry: Registry, **options: Any) -> RunningWorker:
        fields: dict[str, Any] = {
            "redis_url": redis_url, "queues": ["work"], "metrics_port": 0,
            "concurrency": 4, "worker_name": f"w{len(started)}",
        }  # fmt: skip
        fields.update(options)
        settings = WorkerSettings(**fields)
        redis = connect(settings.redis_url)
        clients.append(redis)
        metrics = WorkerMetrics()
        worker = Worker(settings, RedisBackend(redis, settings), registry=registry,
                        metrics=metrics)  # fmt: skip
        running = RunningWorker(worker, asyncio.create_task(worker.run()), metrics)
        started.append(running)
        return running

    yield start
    for running in started:
        if not running.task.done():
            running.worker.stop()
            running.worker.stop()  # skip the grace period at teardown
            with contextlib.suppress(Exception):
                await asyncio.wait_for(running.task, 30)
    for redis in clients:
        await redis.aclose()


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], within: float = 20.0, every: float = 0.02
) -> None:
    """Poll ``predicate`` until true; fail the test after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(every)


async def wait_for_state(
    q: AsyncQueue, job_id: str, state: JobState, within: float = 20.0, every: float = 0.02
) -> Job:
    async def reached() -> bool:
        return (await q.get(job_id)).state is state

    await wait_until(reached, within, every)
    return await q.get(job_id)
