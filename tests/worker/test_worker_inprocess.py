"""The worker loop against a real redis-server, in this process (handlers defined here)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from jobqueue.builtins import debug
from jobqueue.client import AsyncQueue
from jobqueue.models import JobState
from jobqueue.protocol.keys import QueueKeys
from jobqueue.registry import Registry
from jobqueue.runtime.context import JobContext, SyncJobContext
from jobqueue.runtime.failures import JobCancelled, PermanentJobError
from jobqueue.runtime.redis_backend import RedisBackend
from jobqueue.stats import read_stats
from worker_waits import wait_for_state, wait_until

if TYPE_CHECKING:
    from worker_fixtures import StartWorker

pytest_plugins = ["worker_fixtures"]

pytestmark = [pytest.mark.redis, pytest.mark.timeout(120)]


def echo_registry() -> Registry:
    registry = Registry()

    @registry_task(registry, "echo.async")
    async def echo_async(ctx: JobContext, payload: Any) -> Any:
        return {"echo": payload, "attempt": ctx.attempt, "job_id": ctx.job_id}

    @registry_task(registry, "echo.sync")
    def echo_sync(ctx: SyncJobContext, payload: Any) -> Any:
        ctx.progress(50, "half way")  # the blocking variant, from a pool thread
        return {"echo": payload, "thread": threading.current_thread().name}

    return registry


def registry_task(registry: Registry, name: str) -> Any:
    def decorate(fn: Any) -> Any:
        registry.register(name, fn)
        return fn

    return decorate


async def test_async_and_sync_handlers_store_their_results(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    await start_worker(echo_registry())
    a = await queue.submit("echo.async", {"n": 1})
    s = await queue.submit("echo.sync", [1, 2])
    job_a = await queue.wait(a, timeout=20)
    job_s = await queue.wait(s, timeout=20)
    assert job_a.state is JobState.COMPLETED
    assert job_a.result == {"echo": {"n": 1}, "attempt": 1, "job_id": a}
    assert job_s.state is JobState.COMPLETED
    assert job_s.result["echo"] == [1, 2]
    assert job_s.result["thread"].startswith("jobq-handler")
    assert job_s.progress == 100  # completion sets 100 over the handler's 50


async def test_exception_fails_the_attempt_with_type_and_message_then_retries(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    registry = Registry()
    calls: list[int] = []

    @registry_task(registry, "flaky")
    async def flaky(ctx: JobContext, payload: Any) -> str:
        calls.append(ctx.attempt)
        if ctx.attempt < 2:
            raise ValueError(f"bad input on try {ctx.attempt}")
        return "ok"

    @registry_task(registry, "always.fails")
    def always_fails(ctx: SyncJobContext, payload: Any) -> None:
        raise KeyError("missing")

    await start_worker(registry)
    flaky_id = await queue.submit("flaky", attempts=3, backoff="fixed:0")
    dead_id = await queue.submit("always.fails", attempts=2, backoff="fixed:0")
    flaky_job = await queue.wait(flaky_id, timeout=20)
    dead = await queue.wait(dead_id, timeout=20)
    assert flaky_job.state is JobState.COMPLETED and flaky_job.result == "ok"
    assert calls == [1, 2]
    assert flaky_job.attempts == 2
    assert dead.state is JobState.FAILED
    assert dead.attempts == 2
    assert dead.error == "KeyError: 'missing'"


async def test_permanent_error_skips_remaining_attempts(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    registry = Registry()

    @registry_task(registry, "permanent")
    async def permanent(ctx: JobContext, payload: Any) -> None:
        raise PermanentJobError("the file does not exist")

    await start_worker(registry)
    job = await queue.wait(await queue.submit("permanent", attempts=5), timeout=20)
    assert job.state is JobState.FAILED
    assert job.attempts == 1
    assert job.error == "PermanentJobError: the file does not exist"


async def test_timeout_cancels_async_and_sync_handlers_and_fails_the_attempt(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    registry = Registry()
    async_cancelled = asyncio.Event()
    release_thread = threading.Event()
    thread_saw_cancel: list[bool] = []

    @registry_task(registry, "slow.async")
    async def slow_async(ctx: JobContext, payload: Any) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            async_cancelled.set()
            raise

    @registry_task(registry, "slow.sync")
    def slow_sync(ctx: SyncJobContext, payload: Any) -> None:
        thread_saw_cancel.append(ctx.wait_cancelled_sync(timeout=60))
        release_thread.wait(60)

    await start_worker(registry)
    a = await queue.submit("slow.async", attempts=1, timeout=0.5)
    s = await queue.submit("slow.sync", attempts=1, timeout=0.5)
    job_a = await queue.wait(a, timeout=20)
    job_s = await queue.wait(s, timeout=20)
    release_thread.set()
    for job in (job_a, job_s):
        assert job.state is JobState.FAILED
        assert job.error is not None and job.error.startswith("JobTimeout:")
        assert "0.5s" in job.error
    assert async_cancelled.is_set()

    async def thread_woke() -> bool:
        return bool(thread_saw_cancel)

    await wait_until(thread_woke)  # the thread wakes a moment after the report
    assert thread_saw_cancel == [True]  # the thread handler saw ctx.cancelled become true


async def test_malformed_jobs_go_to_the_dead_letter_and_the_worker_keeps_running(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    registry = echo_registry()
    corrupt = await queue.submit("echo.async", {"fine": True}, attempts=3)
    # Corrupt the stored payload (as a foreign or broken producer might).
    await queue.redis.hset(QueueKeys("work").job(corrupt), "payload", "{not json")
    await start_worker(registry)
    job_corrupt = await queue.wait(corrupt, timeout=20)  # reads tolerate the bad payload
    assert job_corrupt.state is JobState.FAILED
    assert job_corrupt.attempts == 1  # not retried: it can never succeed
    assert job_corrupt.corrupt_fields == ("payload",) and job_corrupt.payload == "{not json"
    assert job_corrupt.error is not None
    assert job_corrupt.error.startswith("MalformedJobRecord: stored payload is not valid JSON")
    later = await queue.wait(await queue.submit("echo.async", 7), timeout=20)
    assert later.state is JobState.COMPLETED


async def test_result_that_is_not_json_fails_clearly(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    registry = Registry()

    @registry_task(registry, "returns.set")
    async def returns_set(ctx: JobContext, payload: Any) -> Any:
        return {1, 2}

    await start_worker(registry)
    job = await queue.wait(await queue.submit("returns.set"), timeout=20)
    assert job.state is JobState.FAILED
    assert job.error is not None and job.error.startswith("ResultNotJSON:")


async def test_cancel_of_an_active_job_reaches_the_handler(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    registry = Registry()
    started = asyncio.Event()

    @registry_task(registry, "cooperative")
    async def cooperative(ctx: JobContext, payload: Any) -> None:
        started.set()
        await ctx.wait_cancelled()
        raise JobCancelled("stopping as asked")

    await start_worker(registry, lease_seconds=1.5)  # renewals every 0.5 s
    job_id = await queue.submit("cooperative")
    await asyncio.wait_for(started.wait(), 20)
    assert (await queue.get(job_id)).state is JobState.ACTIVE
    await queue.cancel(job_id)
    job = await queue.wait(job_id, timeout=20)
    assert job.state is JobState.CANCELLED


async def test_progress_is_visible_while_the_job_runs(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    registry = Registry()
    go_on = asyncio.Event()

    @registry_task(registry, "reports")
    async def reports(ctx: JobContext, payload: Any) -> str:
        await ctx.progress(42.5, "crunching")
        await go_on.wait()
        return "done"

    await start_worker(registry)
    job_id = await queue.submit("reports")

    async def progress_seen() -> bool:
        job = await queue.get(job_id)
        return job.progress == 42.5 and job.progress_message == "crunching"

    await wait_until(progress_seen)
    assert (await queue.get(job_id)).state is JobState.ACTIVE
    go_on.set()
    assert (await queue.wait(job_id, timeout=20)).result == "done"


async def test_builtin_debug_sleep_honours_cancel_and_debug_fail_fails(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    import jobqueue.builtins  # noqa: F401  registers into the default registry
    from jobqueue.registry import DEFAULT_REGISTRY

    await start_worker(DEFAULT_REGISTRY, lease_seconds=1.5)
    sleeper = await queue.submit("debug.sleep", {"seconds": 60, "steps": 600})
    await wait_for_state(queue, sleeper, JobState.ACTIVE)
    await queue.cancel(sleeper)
    assert (await queue.wait(sleeper, timeout=20)).state is JobState.CANCELLED

    failing = await queue.submit("debug.fail", {"message": "on purpose"}, attempts=1)
    job = await queue.wait(failing, timeout=20)
    assert job.state is JobState.FAILED and job.error == "DebugFailure: on purpose"

    echoed = await queue.wait(await queue.submit("debug.echo", {"x": [1]}), timeout=20)
    assert echoed.result == {"x": [1]}

    retried = await queue.submit("debug.fail", {"fail_attempts": 1}, attempts=2, backoff="fixed:0")
    assert (await queue.wait(retried, timeout=20)).result == {"succeeded_on_attempt": 2}


async def test_burst_mode_returns_when_the_queue_is_empty(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    ids = [await queue.submit("echo.async", i) for i in range(5)]
    running = await start_worker(echo_registry(), burst=True)
    await asyncio.wait_for(running.task, 30)  # returns by itself
    for job_id in ids:
        assert (await queue.get(job_id)).state is JobState.COMPLETED


async def test_idle_worker_picks_up_a_new_job(queue: AsyncQueue, start_worker: StartWorker) -> None:
    running = await start_worker(echo_registry())
    await asyncio.sleep(0.5)  # the worker is now blocked on Redis with nothing to do
    assert not running.task.done()
    job = await queue.wait(await queue.submit("echo.async", "hi"), timeout=20)
    assert job.state is JobState.COMPLETED


async def test_a_woken_worker_starts_its_job_before_it_asks_for_more(
    queue: AsyncQueue, start_worker: StartWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The take that follows a wake-up must not delay the job it brought: the handler starts
    # first (enqueue-to-start latency), then the worker looks for more.
    events: list[str] = []
    take, wait_and_take = RedisBackend.take, RedisBackend.wait_and_take

    async def spying_take(self: RedisBackend, *args: Any) -> Any:
        events.append("take")
        return await take(self, *args)

    async def spying_wait(self: RedisBackend, *args: Any) -> Any:
        jobs = await wait_and_take(self, *args)
        events.append("woken" if jobs else "wait ended")
        return jobs

    monkeypatch.setattr(RedisBackend, "take", spying_take)
    monkeypatch.setattr(RedisBackend, "wait_and_take", spying_wait)
    registry = Registry()

    @registry_task(registry, "mark")
    async def mark(ctx: JobContext, payload: Any) -> None:
        events.append("handler")

    async def looked() -> bool:
        return "take" in events  # its first look found nothing: it waits for work

    await start_worker(registry)
    await wait_until(looked)
    await queue.wait(await queue.submit("mark"), timeout=20)
    woken = events.index("woken")
    assert events[woken + 1 : woken + 3] == ["handler", "take"], events


async def test_worker_registers_heartbeats_and_unregisters(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    registry = Registry()
    go_on = asyncio.Event()

    @registry_task(registry, "hold")
    async def hold(ctx: JobContext, payload: Any) -> None:
        await go_on.wait()

    running = await start_worker(registry, lease_seconds=1.5, worker_name="pod-7", concurrency=3)
    await queue.submit("hold")

    async def busy_in_registry() -> bool:
        stats = await read_stats(queue.redis, "work")
        return any(w.name == "pod-7" and w.jobs_in_hand == 1 for w in stats.workers)

    await wait_until(busy_in_registry)
    info = (await read_stats(queue.redis, "work")).workers[0]
    assert info.concurrency == 3 and info.queues == ["work"]
    go_on.set()
    await running.stop()
    assert (await read_stats(queue.redis, "work")).workers == []


async def test_stop_waits_for_jobs_in_hand(queue: AsyncQueue, start_worker: StartWorker) -> None:
    registry = Registry()
    started = asyncio.Event()

    @registry_task(registry, "short")
    async def short(ctx: JobContext, payload: Any) -> str:
        started.set()
        await asyncio.sleep(0.5)
        return "finished"

    running = await start_worker(registry, shutdown_timeout=30)
    job_id = await queue.submit("short")
    await asyncio.wait_for(started.wait(), 20)
    await running.stop()
    job = await queue.get(job_id)
    assert job.state is JobState.COMPLETED and job.result == "finished"


async def test_stop_hands_back_unfinished_jobs_at_once(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    registry = Registry()
    started: list[str] = []
    release_threads = threading.Event()

    @registry_task(registry, "forever.async")
    async def forever_async(ctx: JobContext, payload: Any) -> None:
        started.append(ctx.job_id)
        await asyncio.sleep(3600)

    @registry_task(registry, "forever.sync")
    def forever_sync(ctx: SyncJobContext, payload: Any) -> None:
        started.append(ctx.job_id)
        release_threads.wait(60)

    running = await start_worker(registry, shutdown_timeout=0.2, lease_seconds=30)
    ids = [await queue.submit("forever.async"), await queue.submit("forever.sync")]

    async def both_started() -> bool:
        return len(started) == 2

    await wait_until(both_started)
    begun = time.monotonic()
    await running.stop()
    release_threads.set()
    # Handed back at once, long before the 30 s lease could lapse; the attempt is not counted.
    assert time.monotonic() - begun < 25
    for job_id in ids:
        job = await queue.get(job_id)
        assert job.state is JobState.QUEUED
        assert job.attempts == 0
    stats = await read_stats(queue.redis, "work")
    assert (stats.queued, stats.active) == (2, 0)


async def test_many_jobs_run_exactly_once_with_batched_completions(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    registry = Registry()
    runs: dict[int, int] = {}

    @registry_task(registry, "count")
    async def count(ctx: JobContext, payload: Any) -> int:
        runs[payload] = runs.get(payload, 0) + 1
        await asyncio.sleep(0)
        return int(payload) * 2

    ids = await queue.submit_many([{"name": "count", "payload": i} for i in range(600)])
    running = await start_worker(registry, concurrency=25, burst=True)
    await asyncio.wait_for(running.task, 60)
    assert runs == {i: 1 for i in range(600)}
    stats = await read_stats(queue.redis, "work")
    assert (stats.completed, stats.queued, stats.active, stats.failed) == (600, 0, 0, 0)
    sample = await queue.get(ids[123])
    assert sample.result == 246
    # Most jobs came from complete-and-take-next rather than separate take calls.
    fetch_calls = sum(
        s.value for m in running.metrics.fetches.collect() for s in m.samples
        if s.name.endswith("_total")
    )  # fmt: skip
    assert fetch_calls < 600


async def test_queues_are_served_in_the_order_given(
    redis_url: str, start_worker: StartWorker
) -> None:
    registry = Registry()
    order: list[str] = []

    @registry_task(registry, "record")
    async def record(ctx: JobContext, payload: Any) -> None:
        order.append(ctx.queue)

    async with AsyncQueue("low", redis_url) as low, AsyncQueue("high", redis_url) as high:
        for _ in range(5):
            await low.submit("record")
            await high.submit("record")
        running = await start_worker(registry, queues=["high", "low"], concurrency=1, burst=True)
        await asyncio.wait_for(running.task, 60)
    assert order == ["high"] * 5 + ["low"] * 5


async def test_a_second_stop_request_skips_the_grace_period(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    registry = Registry()
    started = asyncio.Event()

    @registry_task(registry, "long")
    async def long(ctx: JobContext, payload: Any) -> None:
        started.set()
        await asyncio.sleep(3600)

    running = await start_worker(registry, shutdown_timeout=3600)
    job_id = await queue.submit("long")
    await asyncio.wait_for(started.wait(), 20)
    running.worker.stop()
    await asyncio.sleep(0.2)
    assert not running.task.done()  # still waiting for the job, as the grace period allows
    running.worker.stop()
    await asyncio.wait_for(running.task, 20)
    assert (await queue.get(job_id)).state is JobState.QUEUED


async def test_worker_waits_for_redis_and_survives_its_restart(
    tmp_path: Any, start_worker: StartWorker
) -> None:
    from fixtures_redis import RedisProcess

    server = RedisProcess(tmp_path / "redis")
    url = server.url
    # The worker starts first: it must wait for its Redis rather than give up.
    running = await start_worker(echo_registry(), redis_url=url, lease_seconds=1.5)
    await asyncio.sleep(0.5)
    assert not running.task.done()
    try:
        server.start()
        async with AsyncQueue("work", url) as q:
            first = await q.wait(await q.submit("echo.async", 1), timeout=20)
            assert first.state is JobState.COMPLETED
        server.stop()
        await asyncio.sleep(1.5)  # the worker's calls fail meanwhile; it must keep going
        assert not running.task.done()
        server.start()
        async with AsyncQueue("work", url) as q:
            job_id = await q.submit("echo.async", 2)
            job = await wait_for_state(q, job_id, JobState.COMPLETED, within=30)
            assert job.result["echo"] == 2
        assert running.metrics.redis_errors._value.get() > 0
    finally:
        server.stop()


async def test_cancel_reaches_a_running_job_long_before_the_next_renewal(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    registry = Registry()
    registry.register("debug.sleep", debug.sleep)
    # Lease 60 s: the regular renewal comes every 20 s, so only the cancel announcement
    # can stop the job within the bound below.
    await start_worker(registry, lease_seconds=60)
    job_id = await queue.submit("debug.sleep", {"seconds": 60, "steps": 1})
    await wait_for_state(queue, job_id, JobState.ACTIVE)
    await asyncio.sleep(0.2)  # let the handler start waiting
    await queue.cancel(job_id)
    job = await queue.wait(job_id, timeout=10)
    assert job.state is JobState.CANCELLED
    assert job.error is not None and "cancel" in job.error


async def test_a_worker_fires_due_schedules_and_runs_their_jobs(
    queue: AsyncQueue, start_worker: StartWorker
) -> None:
    ran: list[Any] = []

    @registry_task(registry := Registry(), "tick")
    async def tick(ctx: JobContext, payload: Any) -> None:
        ran.append(payload)

    await queue.add_schedule("ticker", "tick", every=1, payload={"from": "schedule"})
    await start_worker(registry)

    async def ran_twice() -> bool:
        return len(ran) >= 2

    await wait_until(ran_twice, within=30)
    assert ran[:2] == [{"from": "schedule"}] * 2
