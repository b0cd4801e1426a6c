"""Celery with the Redis broker: the threads pool at the default prefetch, or (BENCH_VARIANT)
``prefetch``: threads with worker_prefetch_multiplier 64, ``prefork``: the prefork pool."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from celery import Celery

from bench.queues import probe


def _app(url: str, queue: str) -> Any:
    app = Celery("bench", broker=url)
    app.conf.update(
        task_ignore_result=True,
        task_default_queue=queue,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    if os.environ.get("BENCH_VARIANT") == "prefetch":
        app.conf.worker_prefetch_multiplier = 64

    @app.task(name="bench_job")  # type: ignore[untyped-decorator]
    def bench_job(payload: dict[str, Any]) -> None:
        probe.handle_sync(payload)

    return app


def enqueue(url: str, queue: str, payloads: Iterable[dict[str, Any]]) -> None:
    app = _app(url, queue)
    task = app.tasks["bench_job"]
    for p in payloads:
        task.apply_async((p,))


def work(url: str, queue: str, concurrency: int) -> None:
    app = _app(url, queue)
    prefork = os.environ.get("BENCH_VARIANT") == "prefork"
    app.Worker(
        pool="prefork" if prefork else "threads",
        # child processes on a 2-core machine: 100 of them would measure the scheduler
        concurrency=min(concurrency, 10) if prefork else concurrency,
        loglevel="WARNING",
        without_mingle=True,
        without_gossip=True,
        without_heartbeat=True,
        queues=[queue],
    ).start()
