"""Celery with the Redis broker and the threads pool."""

from __future__ import annotations

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
    app.Worker(
        pool="threads",
        concurrency=concurrency,
        loglevel="WARNING",
        without_mingle=True,
        without_gossip=True,
        without_heartbeat=True,
        queues=[queue],
    ).start()
