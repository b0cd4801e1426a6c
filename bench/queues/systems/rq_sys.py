"""RQ with SimpleWorker: one job at a time per process, no fork per job."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from redis import Redis
from rq import Queue, SimpleWorker

from bench.queues import probe


def bench_job(payload: dict[str, Any]) -> None:
    probe.handle_sync(payload)


def enqueue(url: str, queue: str, payloads: Iterable[dict[str, Any]]) -> None:
    q = Queue(queue, connection=Redis.from_url(url))
    for p in payloads:
        q.enqueue(bench_job, p)


def enqueue_bulk(url: str, queue: str, payloads: list[dict[str, Any]]) -> None:
    q = Queue(queue, connection=Redis.from_url(url))
    for start in range(0, len(payloads), 1000):
        chunk = payloads[start : start + 1000]
        q.enqueue_many([Queue.prepare_data(bench_job, (p,)) for p in chunk])


def work(url: str, queue: str, concurrency: int) -> None:
    conn = Redis.from_url(url)
    SimpleWorker([Queue(queue, connection=conn)], connection=conn).work(logging_level="WARNING")
