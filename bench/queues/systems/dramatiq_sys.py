"""Dramatiq with the Redis broker; one process, worker_threads = concurrency."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.queues import probe


def _actor(url: str, queue: str) -> Any:
    broker = RedisBroker(url=url)
    dramatiq.set_broker(broker)

    def bench_job(payload: dict[str, Any]) -> None:
        probe.handle_sync(payload)

    return dramatiq.actor(bench_job, actor_name="bench_job", queue_name=queue, max_retries=0)


def enqueue(url: str, queue: str, payloads: Iterable[dict[str, Any]]) -> None:
    actor = _actor(url, queue)
    for p in payloads:
        actor.send(p)


def work(url: str, queue: str, concurrency: int) -> None:
    actor = _actor(url, queue)
    worker = dramatiq.Worker(actor.broker, worker_threads=concurrency)
    worker.start()
    while True:
        time.sleep(3600)
