"""The jobqueue source reads a real redis-server through jobqueue.stats."""

from __future__ import annotations

import asyncio
import time

import pytest
from jobqueue import AsyncQueue
from jobqueue.models import WorkerInfo
from jobqueue_operator.sources import SourceUnavailable
from jobqueue_operator.sources import jobqueue as jobqueue_source
from jobqueue_operator.sources.jobqueue import JobQueueSource, RedisPools
from jobqueue_operator.spec import QueueSettingsSpec
from waits import wait_until

pytestmark = pytest.mark.redis


async def test_reads_backlog_and_worker_loads(redis_url: str) -> None:
    queue_name = f"src-{time.monotonic_ns()}"
    async with AsyncQueue.from_url(redis_url, queue_name) as queue:
        for _ in range(3):
            await queue.submit("noop")
        await queue.submit("later", delay=3600)
        now = time.time()
        info = WorkerInfo(
            id="w1",
            name="pod-a",
            host="h",
            pid=1,
            queues=[queue_name],
            concurrency=2,
            jobs_in_hand=2,
            last_heartbeat=now,
            started_at=now,
        )
        await queue.protocol.heartbeat(info, stale_after=90)
    pools = RedisPools()
    source = JobQueueSource(pools, redis_url, queue_name, window_seconds=60)
    observation = await source.read()
    assert observation.metrics.queued == 3
    assert observation.metrics.delayed == 1 and observation.metrics.delayed_due == 0
    assert observation.metrics.backlog == 3
    assert observation.metrics.oldest_wait_seconds >= 0.0
    assert [(w.name, w.jobs_in_hand) for w in observation.workers] == [("pod-a", 2)]
    await source.close()
    assert len(pools) == 0


async def test_sources_share_one_client_per_redis() -> None:
    pools = RedisPools()
    a = JobQueueSource(pools, "redis://127.0.0.1:1/0", "a")
    b = JobQueueSource(pools, "redis://127.0.0.1:1/0", "b")
    c = JobQueueSource(pools, "redis://127.0.0.1:1/0", "c", password="x")
    assert len(pools) == 2
    await a.close()
    await a.close()  # idempotent
    assert len(pools) == 2
    await b.close()
    await c.close()
    assert len(pools) == 0


async def test_unreachable_redis_raises_source_unavailable() -> None:
    pools = RedisPools()
    source = JobQueueSource(pools, "redis://127.0.0.1:1/0", "q")
    with pytest.raises(SourceUnavailable, match="ConnectionError"):
        await source.read()
    await source.close()


async def test_secret_password_wins_over_one_in_the_url(redis_url: str) -> None:
    """The passwordSecretRef's password is the one used, as in the workers' own connect()."""
    import redis.asyncio as aioredis

    admin = aioredis.Redis.from_url(redis_url, decode_responses=True)
    await admin.config_set("requirepass", "s3cret")
    try:
        wrong_in_url = redis_url.replace("redis://", "redis://:wrong@", 1)
        pools = RedisPools()
        source = JobQueueSource(pools, wrong_in_url, "pw-queue", password="s3cret")
        observation = await source.read()
        assert observation.metrics.queued == 0
        await source.close()
    finally:
        authed = aioredis.Redis.from_url(redis_url, password="s3cret", decode_responses=True)
        await authed.config_set("requirepass", "")
        await authed.aclose()
        await admin.aclose()


async def test_reads_of_queues_on_one_redis_go_out_together(redis_url: str) -> None:
    names = [f"batch-{i}-{time.monotonic_ns()}" for i in range(3)]
    for i, name in enumerate(names):
        async with AsyncQueue.from_url(redis_url, name) as queue:
            await queue.submit_many([{"name": "noop"}] * i)
    pools = RedisPools()
    sources = [JobQueueSource(pools, redis_url, name) for name in names]
    # Read together, as loops woken on the same poll-grid slot do: one pipeline.
    observations = await asyncio.gather(*(s.read() for s in sources))
    assert [o.metrics.queued for o in observations] == [0, 1, 2]
    assert pools.reads(redis_url, None).batches == 1
    await sources[0].read()  # alone: goes out at once, in its own batch
    assert pools.reads(redis_url, None).batches == 2
    for source in sources:
        await source.close()


async def test_a_redis_that_may_evict_is_reported(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobqueue_source, "EVICTION_CHECK_SECONDS", 0.0)
    pools = RedisPools()
    source = JobQueueSource(pools, redis_url, "evict")
    admin = pools.acquire(redis_url, None)
    try:
        assert (await source.read()).redis_problem is None
        await admin.config_set("maxmemory-policy", "volatile-lru")
        problem = (await source.read()).redis_problem
        assert problem is not None and "'volatile-lru'" in problem
    finally:
        await admin.config_set("maxmemory-policy", "noeviction")
        await pools.release(redis_url, None)
        await source.close()


async def test_queue_settings_are_stored_with_the_queue(redis_url: str) -> None:
    pools = RedisPools()
    source = JobQueueSource(pools, redis_url, "configured")
    wanted = QueueSettingsSpec.model_validate({"keepCompleted": 5, "resultTtlSeconds": 60})
    await source.configure(wanted.to_queue_settings())
    await source.close()
    async with AsyncQueue.from_url(redis_url, "configured") as queue:
        stored = await queue.read_settings()
        assert (stored.keep_completed, stored.result_ttl) == (5, 60)
        assert await queue.protocol.read_stored_settings() == {
            "keep_completed": "5", "result_ttl": "60",
        }  # fmt: skip


async def test_lapsed_leases_are_observed(redis_url: str) -> None:
    async with AsyncQueue.from_url(redis_url, "lapsing") as queue:
        await queue.submit("work")
        await queue.protocol.take("w", 1, 0.05)  # the worker "dies" with a 50 ms lease

        async def lapsed() -> bool:
            return await queue.protocol.reap() > 0

        await wait_until(lapsed, within=10)
    pools = RedisPools()
    source = JobQueueSource(pools, redis_url, "lapsing")
    try:
        assert (await source.read()).lease_lapses_5m == 1
    finally:
        await source.close()
