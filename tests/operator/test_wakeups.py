"""Wake-ups: one subscription per Redis feeds the poll loops of the queues on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis
from jobqueue import AsyncQueue
from jobqueue.stats import WAKEUPS_CHANNEL
from jobqueue_operator.sources import AnnouncesWork
from jobqueue_operator.sources.jobqueue import JobQueueSource, RedisPools

pytestmark = pytest.mark.redis


async def _until(predicate: Callable[[], bool], what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def _subscribers(url: str) -> int:
    async with aioredis.Redis.from_url(url) as r:
        counts = await r.pubsub_numsub(WAKEUPS_CHANNEL)
        return int(counts[0][1])


async def test_one_subscription_per_redis_dispatches_by_queue(redis_url: str) -> None:
    tag = time.monotonic_ns()
    pools = RedisPools()
    a = JobQueueSource(pools, redis_url, f"wa-{tag}")
    b = JobQueueSource(pools, redis_url, f"wb-{tag}")
    assert isinstance(a, AnnouncesWork)
    woken: list[str] = []
    a.on_work(lambda: woken.append("a"))
    b.on_work(lambda: woken.append("b"))
    listener = pools.wakeups(redis_url, None)
    await _until(lambda: listener.connected, "the subscription")
    assert await _subscribers(redis_url) == 1  # two queues, one subscription
    # Once subscribed, every queue is woken once (a submit before that was not heard).
    assert sorted(woken) == ["a", "b"] and listener.received == 0
    woken.clear()

    async with aioredis.Redis.from_url(redis_url) as r:
        await r.publish(WAKEUPS_CHANNEL, f"wb-{tag}")
        await r.publish(WAKEUPS_CHANNEL, f"other-{tag}")
    await _until(lambda: listener.received >= 2, "two wake-ups")
    assert woken == ["b"]

    await a.close()
    assert await _subscribers(redis_url) == 1  # b still listens
    await b.close()
    await _until(lambda: not listener.connected, "the unsubscribe")
    assert len(pools) == 0


async def test_a_submit_to_an_idle_queue_wakes_its_source(redis_url: str) -> None:
    name = f"wsub-{time.monotonic_ns()}"
    pools = RedisPools()
    source = JobQueueSource(pools, redis_url, name)
    woken = asyncio.Event()
    source.on_work(woken.set)
    listener = pools.wakeups(redis_url, None)
    await _until(lambda: listener.connected, "the subscription")
    async with AsyncQueue.from_url(redis_url, name) as queue:
        await queue.submit("noop")
    await asyncio.wait_for(woken.wait(), 10)
    await source.close()
    await pools.close()


async def test_the_subscription_comes_back_after_the_connection_drops(redis_url: str) -> None:
    name = f"wre-{time.monotonic_ns()}"
    pools = RedisPools()
    source = JobQueueSource(pools, redis_url, name)
    woken: list[int] = []
    source.on_work(lambda: woken.append(1))
    listener = pools.wakeups(redis_url, None)
    await _until(lambda: listener.connected, "the subscription")
    assert woken == [1] and source.announcing  # the catch-up once subscribed
    async with aioredis.Redis.from_url(redis_url) as r:
        killed = await r.client_kill_filter(_type="pubsub")
        assert killed >= 1
        await _until(lambda: not listener.connected, "the drop to be noticed")
        # A loop sleeping until woken must go back to its interval: the drop wakes it.
        assert woken == [1, 1] and not source.announcing
        await _until(lambda: listener.connected, "the resubscription", within=20)
        assert woken == [1, 1, 1]  # wake-ups published in the gap are made up for
        assert source.announcing
        await r.publish(WAKEUPS_CHANNEL, name)
    await _until(lambda: woken == [1, 1, 1, 1], "a wake-up after reconnecting")
    await source.close()
    await pools.close()
