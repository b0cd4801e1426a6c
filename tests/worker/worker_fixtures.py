"""Fixtures for worker tests: in-process workers and a queue client on the test's redis-server.

Loaded by test modules with ``pytest_plugins = ["worker_fixtures"]`` (a conftest.py here would
shadow other directories' ``conftest`` modules, which some tests import by name).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from jobqueue.client import AsyncQueue
from jobqueue.connection import connect
from jobqueue.registry import Registry
from jobqueue.runtime.metrics import WorkerMetrics
from jobqueue.runtime.redis_backend import RedisBackend
from jobqueue.runtime.settings import WorkerSettings
from jobqueue.runtime.worker import Worker


@dataclass
class RunningWorker:
    worker: Worker
    task: asyncio.Task[None]
    metrics: WorkerMetrics

    async def stop(self, grace: float = 30.0) -> None:
        self.worker.stop()
        await asyncio.wait_for(asyncio.shield(self.task), grace)


StartWorker = Callable[..., Awaitable[RunningWorker]]


@pytest.fixture
async def queue(redis_url: str) -> AsyncIterator[AsyncQueue]:
    client = AsyncQueue("work", redis_url)
    yield client
    await client.close()


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
