"""BullMQ (the Python port: BullMQ's own Lua scripts) and Celery under the kill loop: the
enqueue and worker sides, run inside the competitors' virtualenv (bench/venv.py).

    python -m bench.chaos.peer_workers enqueue --system celery --url URL --queue Q --plan FILE
    python -m bench.chaos.peer_workers worker  --system bullmq --url URL --queue Q \
        --concurrency 8 --tally DIR --name w3
    python -m bench.chaos.peer_workers failed  --system bullmq --url URL --queue Q

Each system runs with its defaults for crash recovery, as its documentation presents them:
Celery with ``task_acks_late=True`` (the setting its docs give for tasks that must survive a
worker crash; redelivery of unacknowledged messages waits for the Redis transport's
``visibility_timeout``, 1 hour by default); BullMQ with its stalled-job check (lock 30 s,
check every 30 s, a job stalled more than once fails). The handler tallies each run in the
same ``S``/``E`` format as ``handlers.py`` (the token: a unique id per delivery).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any


def _tally(directory: str, name: str, mark: str, job: str, token: str) -> None:
    path = os.path.join(directory, f"{name}-{os.getpid()}.tally")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{mark} {job} {token} {name} {time.time():.3f}\n".encode())
    finally:
        os.close(fd)


def _celery(url: str, queue: str) -> Any:
    from celery import Celery

    app = Celery("chaos", broker=url)
    app.conf.update(
        task_ignore_result=True, task_default_queue=queue, task_acks_late=True,
        broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
    )  # fmt: skip

    @app.task(name="chaos_job")  # type: ignore[untyped-decorator]
    def chaos_job(payload: dict[str, Any]) -> None:
        tally, name = os.environ["CHAOS_TALLY_DIR"], os.environ["CHAOS_WORKER_NAME"]
        token = uuid.uuid4().hex[:12]
        _tally(tally, name, "S", str(payload["i"]), token)
        time.sleep(payload["ms"] / 1000)
        _tally(tally, name, "E", str(payload["i"]), token)

    return app


def enqueue(system: str, url: str, queue: str, payloads: list[dict[str, Any]]) -> None:
    if system == "celery":
        task = _celery(url, queue).tasks["chaos_job"]
        for p in payloads:
            task.apply_async((p,))
        return
    from bullmq import Queue

    async def run() -> None:
        q = Queue(queue, {"connection": url})
        for start in range(0, len(payloads), 500):
            chunk = payloads[start : start + 500]
            await q.addBulk([{"name": "chaos_job", "data": p} for p in chunk])
        await q.close()

    asyncio.run(run())


def work(system: str, url: str, queue: str, concurrency: int) -> None:
    if system == "celery":
        _celery(url, queue).Worker(
            pool="threads", concurrency=concurrency, loglevel="WARNING", without_mingle=True,
            without_gossip=True, without_heartbeat=True, queues=[queue],
        ).start()  # fmt: skip
        return
    from bullmq import Worker

    tally, name = os.environ["CHAOS_TALLY_DIR"], os.environ["CHAOS_WORKER_NAME"]

    async def process(job: Any, token: str) -> None:
        i = str(job.data["i"])
        _tally(tally, name, "S", i, token)
        await asyncio.sleep(job.data["ms"] / 1000)
        _tally(tally, name, "E", i, token)

    async def run() -> None:
        Worker(queue, process, {"connection": url, "concurrency": concurrency})
        await asyncio.Event().wait()

    asyncio.run(run())


def failed(system: str, url: str, queue: str) -> dict[str, Any]:
    """What the system itself reports as failed (BullMQ: the failed set, by reason)."""
    if system == "celery":
        return {}
    from bullmq import Queue

    async def run() -> dict[str, Any]:
        q = Queue(queue, {"connection": url})
        jobs = await q.getJobs(["failed"], 0, -1)
        reasons: dict[str, int] = {}
        for job in jobs:
            reason = str(job.failedReason)
            reasons[reason] = reasons.get(reason, 0) + 1
        counts = await q.getJobCounts("completed", "failed", "active", "wait", "delayed")
        await q.close()
        return {"reasons": reasons, "counts": counts}

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.chaos.peer_workers")
    parser.add_argument("role", choices=["enqueue", "worker", "failed"])
    parser.add_argument("--system", required=True, choices=["bullmq", "celery"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--plan", type=Path, help="JSON list of payloads (enqueue)")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    if args.role == "enqueue":
        enqueue(args.system, args.url, args.queue, json.loads(args.plan.read_text()))
    elif args.role == "worker":
        work(args.system, args.url, args.queue, args.concurrency)
    else:
        print(json.dumps(failed(args.system, args.url, args.queue)))


if __name__ == "__main__":
    main()
