"""wait_then_take: an idle worker's wait and its take in one round trip, and its wake-up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from jobqueue.models import build_spec
from jobqueue.protocol import QueueProtocol, wait_then_take, wake_worker

pytestmark = pytest.mark.redis


@pytest.fixture
async def waiter(redis_url: str) -> AsyncIterator[QueueProtocol]:
    """The worker side, on its own client (its BZPOPMIN must not hold the test's client)."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield QueueProtocol(client, "q")
    await client.aclose()


async def test_a_submit_during_the_wait_comes_back_leased(
    proto: QueueProtocol, waiter: QueueProtocol
) -> None:
    assert await wait_then_take([waiter], "w", 5, 30, 0.05) == []  # nothing: times out empty
    task = asyncio.create_task(wait_then_take([waiter], "w", 5, 30, 30))
    await asyncio.sleep(0.1)
    assert not task.done()
    await proto.submit(build_spec("job", {"n": 1}), "j1")
    jobs = await asyncio.wait_for(task, 10)
    assert jobs is not None and [(j.id, j.payload) for j in jobs] == [("j1", {"n": 1})]
    assert jobs[0].token > 0
    fields = await proto.get_fields("j1")
    assert (fields["state"], fields["worker"]) == ("active", "w")
    assert await proto.redis.zscore(proto.keys.active, "j1") is not None


async def test_ready_work_is_taken_without_blocking(
    proto: QueueProtocol, waiter: QueueProtocol
) -> None:
    for i in range(3):
        await proto.submit(build_spec("job"), f"r{i}")
    jobs = await asyncio.wait_for(wait_then_take([waiter], "w", 2, 30, 30), 10)
    assert jobs is not None and [j.id for j in jobs] == ["r0", "r1"]


async def test_waking_the_worker_ends_the_wait_and_leaves_no_key(
    proto: QueueProtocol, waiter: QueueProtocol
) -> None:
    task = asyncio.create_task(wait_then_take([waiter], "w", 5, 30, 30))
    await asyncio.sleep(0.1)
    assert not task.done()
    await wake_worker([proto], "w")
    assert await asyncio.wait_for(task, 10) == []
    assert await proto.redis.exists(proto.keys.worker_wake("w")) == 0
    # another worker's wake-up does not end this one's wait
    task = asyncio.create_task(wait_then_take([waiter], "w", 5, 30, 30))
    await asyncio.sleep(0.1)
    await wake_worker([proto], "other")
    await asyncio.sleep(0.2)
    assert not task.done()
    await wake_worker([proto], "w")
    assert await asyncio.wait_for(task, 10) == []


async def test_a_job_submitted_with_the_wake_up_is_returned_not_lost(
    proto: QueueProtocol, waiter: QueueProtocol
) -> None:
    task = asyncio.create_task(wait_then_take([waiter], "w", 5, 30, 30))
    await asyncio.sleep(0.1)
    await proto.submit(build_spec("job"), "late")  # wakes the wait; the wake-up races it
    await wake_worker([proto], "w")
    jobs = await asyncio.wait_for(task, 10)
    assert jobs is not None and [j.id for j in jobs] == ["late"]
