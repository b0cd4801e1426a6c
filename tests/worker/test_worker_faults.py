"""The worker loop under faults: a stalled event loop, a retake of its own job, cancels that
come too late, handlers that outlive their timeout, odd bytes in errors, lost replies,
refused keys. In-process workers against a real redis-server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
import redis
import redis.asyncio as aioredis
import redis.exceptions
from jobqueue.client import AsyncQueue
from jobqueue.connection import connect
from jobqueue.models import JobState
from jobqueue.protocol import QueueProtocol
from jobqueue.registry import Registry
from jobqueue.runtime.context import JobContext, SyncJobContext
from jobqueue.runtime.failures import PermanentJobError
from jobqueue.runtime.metrics import WorkerMetrics
from jobqueue.runtime.redis_backend import RedisBackend
from jobqueue.runtime.settings import WorkerSettings
from jobqueue.runtime.worker import Worker
from worker_waits import wait_for_state, wait_until

if TYPE_CHECKING:
    from worker_fixtures import StartWorker

pytest_plugins = ["worker_fixtures"]

pytestmark = [pytest.mark.redis, pytest.mark.timeout(120)]

SURROGATES = b"bad \xff\xfe bytes".decode("utf-8", "surrogateescape")


def registry_of(**handlers: Any) -> Registry:
    registry = Registry()
    for name, fn in handlers.items():
        registry.register(name.replace("_", "."), fn)
    return registry


async def test_a_retake_of_its_own_lapsed_job_runs_alone_and_completes(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    """The event loop stalls past the lease; the same worker takes the job again. The stale
    attempt must be told (cancelled, its outcome refused) and the new one tracked on its own:
    before, the stale attempt's end removed the new attempt's bookkeeping, the new attempt
    was never renewed, lapsed, and the job ended in the dead letter although it succeeded."""
    calls = 0
    first_cancelled = asyncio.Event()

    async def stall_then_finish(ctx: JobContext, payload: Any) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            time.sleep(5.0)  # noqa: ASYNC251 - stalls the event loop: no renewals, the lease lapses
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                first_cancelled.set()
                raise
            return "first"
        await asyncio.sleep(4.0)  # outlives two leases: only renewals keep it
        return "second"

    await start_worker(registry_of(stall=stall_then_finish), lease_seconds=2.0, concurrency=2)
    jid = await queue.submit("stall", attempts=2)
    job = await wait_for_state(queue, jid, JobState.COMPLETED, within=60)
    assert job.result == "second"
    assert first_cancelled.is_set()
    assert calls == 2


async def test_a_handler_that_completes_after_a_cancel_request_is_recorded_completed(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    async def finish_anyway(ctx: JobContext, payload: Any) -> str:
        await ctx.wait_cancelled()
        return "done anyway"

    await start_worker(registry_of(finish=finish_anyway))
    jid = await queue.submit("finish")
    await wait_for_state(queue, jid, JobState.ACTIVE)
    await queue.cancel(jid)
    job = await queue.wait(jid, timeout=20)
    assert (job.state, job.result) == (JobState.COMPLETED, "done anyway")


async def test_a_thread_handler_past_its_timeout_never_overlaps_its_retry(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    runs: list[tuple[float, float]] = []
    lock = threading.Lock()

    def slow_first(ctx: SyncJobContext, payload: Any) -> str:
        start = time.monotonic()
        if not runs:
            time.sleep(2.0)  # ignores its 0.5 s timeout
        with lock:
            runs.append((start, time.monotonic()))
        return "ok"

    await start_worker(registry_of(slow=slow_first), concurrency=2)
    jid = await queue.submit("slow", timeout=0.5, attempts=2, backoff="fixed:0")
    job = await wait_for_state(queue, jid, JobState.COMPLETED, within=30)
    assert job.attempts == 2
    (_, first_end), (second_start, _) = sorted(runs)
    assert second_start >= first_end


async def test_a_thread_still_running_past_its_timeout_keeps_its_slot(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    """Concurrency 1: while a timed-out thread still runs, the worker must not take a job it
    cannot start (it would wait in the pool and time out without ever running)."""

    def stuck(ctx: SyncJobContext, payload: Any) -> None:
        time.sleep(3.0)

    def quick(ctx: SyncJobContext, payload: Any) -> str:
        return "ran"

    await start_worker(registry_of(stuck=stuck, quick=quick), concurrency=1)
    first = await queue.submit("stuck", timeout=0.3, attempts=1)
    await wait_for_state(queue, first, JobState.FAILED)
    second = await queue.submit("quick", timeout=1.0, attempts=1)
    job = await queue.wait(second, timeout=30)
    assert (job.state, job.result) == (JobState.COMPLETED, "ran")


@pytest.mark.parametrize("permanent", [False, True])
async def test_any_exception_text_is_recorded(
    queue: AsyncQueue, start_worker: StartWorker, permanent: bool
) -> None:
    async def odd(ctx: JobContext, payload: Any) -> None:
        raise (PermanentJobError if permanent else ValueError)(SURROGATES)

    await start_worker(registry_of(odd=odd))
    jid = await queue.submit("odd", attempts=2, backoff="fixed:0")
    job = await queue.wait(jid, timeout=20)
    assert job.state is JobState.FAILED
    assert job.attempts == (1 if permanent else 2)
    assert job.error is not None and "bad " in job.error and "bytes" in job.error


async def test_burst_mode_waits_for_the_retries_of_its_jobs(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    calls = 0

    async def flaky(ctx: JobContext, payload: Any) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("first try fails")
        return "second try"

    jid = await queue.submit("flaky", attempts=2, backoff="fixed:1")
    running = await start_worker(registry_of(flaky=flaky), burst=True)
    await asyncio.wait_for(running.task, 30)  # the burst worker exits by itself
    job = await queue.get(jid)
    assert (job.state, job.result) == (JobState.COMPLETED, "second try")


async def test_a_burst_wait_that_begins_after_the_last_slot_ended_returns(
    redis_url: str,
) -> None:
    """The fetch loop saw a job in hand and went to wait for it, but the wait runs as a task
    of its own: the job may end before that task starts. Its end must not be forgotten (a
    burst worker hung until killed, with nothing left to run)."""
    settings = WorkerSettings(redis_url=redis_url, queues=["q"], metrics_port=0, burst=True)
    redis = connect(settings.redis_url)
    worker = Worker(settings, RedisBackend(redis, settings), registry=Registry(),
                    metrics=WorkerMetrics())  # fmt: skip
    try:
        worker._slot_freed.set()  # the last slot ended (and said so) before the wait began
        await asyncio.wait_for(worker._burst_wait(), 10)
    finally:
        await redis.aclose()


async def test_a_job_no_handler_serves_is_handed_back_for_another_worker(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    """A rolling deploy: an old worker takes a job of a new type. It goes back to the queue
    (after a short delay) for a worker that serves it, instead of the dead letter."""

    async def new_type(ctx: JobContext, payload: Any) -> str:
        return "served"

    old = await start_worker(Registry())
    jid = await queue.submit("new.type", attempts=1)

    async def handed_back() -> bool:
        return (await queue.get(jid)).handbacks >= 1

    await wait_until(handed_back)
    job = await queue.get(jid)
    assert job.state in (JobState.DELAYED, JobState.QUEUED, JobState.ACTIVE)
    assert job.attempts <= 1 and job.error is not None and "new.type" in job.error
    await old.stop()
    await start_worker(registry_of(new_type=new_type))
    job = await queue.wait(jid, timeout=30)
    assert (job.state, job.result) == (JobState.COMPLETED, "served")


async def test_handlers_see_their_fencing_token(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    async def token(ctx: JobContext, payload: Any) -> int:
        return ctx.fencing_token

    await start_worker(registry_of(token=token))
    job = await queue.wait(await queue.submit("token"), timeout=20)
    stored = await queue.protocol.get_fields(job.id)
    assert job.result == int(stored["token"]) > 0


async def test_a_result_over_the_queues_limit_fails_clearly(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    async def big(ctx: JobContext, payload: Any) -> str:
        return "x" * 5000

    await queue.configure(max_result_bytes=1000)
    await start_worker(registry_of(big=big))
    job = await queue.wait(await queue.submit("big", attempts=3), timeout=20)
    assert job.state is JobState.FAILED and job.attempts == 1
    assert job.error is not None and job.error.startswith("ResultTooLarge:")


async def test_a_progress_message_over_the_limit_is_refused_to_the_handler(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    async def chatty(ctx: JobContext, payload: Any) -> str:
        try:
            await ctx.progress(10, "m" * 10_000)
        except ValueError as exc:
            return f"refused: {exc}"
        return "stored"

    await start_worker(registry_of(chatty=chatty))
    job = await queue.wait(await queue.submit("chatty"), timeout=20)
    assert job.result.startswith("refused: ") and "bytes" in job.result


async def test_a_lost_take_reply_is_recovered_without_a_lapse(
    queue: AsyncQueue, start_worker: StartWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The take ran in Redis but its reply never arrived (a socket timeout): the worker must
    recover the jobs it leased, not leave them to lapse and count a lapse against them."""
    real_take = QueueProtocol.take
    lost = 0

    async def take_losing_a_reply(self: QueueProtocol, *args: Any, **kwargs: Any) -> Any:
        nonlocal lost
        jobs = await real_take(self, *args, **kwargs)
        if jobs and not lost:
            lost += 1
            raise redis.exceptions.TimeoutError("Timeout reading from socket")
        return jobs

    async def echo(ctx: JobContext, payload: Any) -> Any:
        return payload

    jid = await queue.submit("echo", 7)  # queued before the worker starts: taken by take()
    monkeypatch.setattr(QueueProtocol, "take", take_losing_a_reply)
    await start_worker(registry_of(echo=echo), lease_seconds=30.0)
    job = await queue.wait(jid, timeout=20)  # well before the 30 s lease could lapse
    assert (job.state, job.result, job.attempts, job.lapses) == (JobState.COMPLETED, 7, 1, 0)
    assert lost == 1


async def test_jobs_taken_from_one_queue_survive_an_error_on_the_next(
    redis_url: str, rclient: aioredis.Redis
) -> None:
    """A worker serving queues a and b: taking from b is refused. The jobs it had just taken
    from a must still run (before, they stayed leased, never ran, and lapsed)."""
    # Every key of both queues but b's ready set: each take from b is refused.
    await rclient.execute_command(
        "ACL", "SETUSER", "nob", "on", ">pw", "+@all", "&*", "~{jq:a}:*", "~jq:*",
        *(f"~{{jq:b}}:{k}" for k in (
            "enqueued", "delayed", "active", "completed", "failed", "cancelled", "marker",
            "events", "dedup", "seq", "outcomes", "workers", "workerinfo", "settings", "job:*",
            "wake:*", "taken:*", "guard")),
    )  # fmt: skip
    qa = AsyncQueue("a", redis_url)
    jid = await qa.submit("echo", 1)

    async def echo(ctx: JobContext, payload: Any) -> Any:
        return payload

    settings = WorkerSettings(
        redis_url=redis_url.replace("redis://", "redis://nob:pw@"), queues=["a", "b"],
        metrics_port=0, worker_name="w",
    )  # fmt: skip
    redis = connect(settings.redis_url)
    worker = Worker(settings, RedisBackend(redis, settings), registry=registry_of(echo=echo),
                    metrics=WorkerMetrics())  # fmt: skip
    task = asyncio.create_task(worker.run())
    try:
        job = await qa.wait(jid, timeout=20)
        assert (job.state, job.attempts, job.lapses) == (JobState.COMPLETED, 1, 0)
    finally:
        worker.stop()
        worker.stop()
        await asyncio.wait_for(task, 30)
        await redis.aclose()
        await qa.close()


async def test_completions_of_one_queue_survive_a_refused_completion_on_another(
    redis_url: str, rclient: aioredis.Redis
) -> None:
    """Completions reported together, for queues a and b: b's is refused. a's must be
    recorded (before, one failure failed the whole batch and a's job lapsed)."""
    await rclient.execute_command(
        "ACL", "SETUSER", "nobdone", "on", ">pw", "+@all", "&*", "~{jq:a}:*", "~jq:*",
        *(f"~{{jq:b}}:{k}" for k in (
            "queued", "enqueued", "delayed", "active", "failed", "cancelled", "marker",
            "events", "dedup", "seq", "outcomes", "workers", "workerinfo", "settings",
            "job:*", "wake:*", "taken:*", "guard")),
    )  # fmt: skip
    qa, qb = AsyncQueue("a", redis_url), AsyncQueue("b", redis_url)
    release = asyncio.Event()

    async def together(ctx: JobContext, payload: Any) -> Any:
        await release.wait()
        return payload

    ja = await qa.submit("together", "a")
    jb = await qb.submit("together", "b")
    settings = WorkerSettings(
        redis_url=redis_url.replace("redis://", "redis://nobdone:pw@"), queues=["a", "b"],
        metrics_port=0, worker_name="w", concurrency=2,
    )  # fmt: skip
    redis = connect(settings.redis_url)
    worker = Worker(settings, RedisBackend(redis, settings),
                    registry=registry_of(together=together), metrics=WorkerMetrics())  # fmt: skip
    task = asyncio.create_task(worker.run())
    try:
        await wait_for_state(qa, ja, JobState.ACTIVE)
        await wait_for_state(qb, jb, JobState.ACTIVE)
        release.set()  # both finish at once: one report for both queues
        job = await qa.wait(ja, timeout=20)
        assert (job.state, job.attempts, job.lapses) == (JobState.COMPLETED, 1, 0)
    finally:
        worker.stop()
        worker.stop()
        await asyncio.wait_for(task, 30)
        await redis.aclose()
        for q in (qa, qb):
            await q.close()


def test_a_worker_refuses_a_redis_that_may_evict_job_records(redis_url: str) -> None:
    """Any maxmemory-policy but noeviction lets Redis delete job records under memory
    pressure: the worker refuses to start, with the reason, unless told to allow it."""
    admin = redis.Redis.from_url(redis_url)
    env = {**os.environ, "JOBQUEUE_REDIS_URL": redis_url, "JOBQUEUE_METRICS_PORT": "0"}
    command = [sys.executable, "-m", "jobqueue.cli", "worker", "q", "--burst"]
    try:
        admin.config_set("maxmemory-policy", "allkeys-lru")
        refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1
        assert "maxmemory-policy is 'allkeys-lru'" in refused.stderr
        allowed = subprocess.run(
            [*command, "--allow-eviction"], env=env, capture_output=True, text=True, timeout=60
        )
        assert allowed.returncode == 0, allowed.stderr
    finally:
        admin.config_set("maxmemory-policy", "noeviction")
        admin.close()
