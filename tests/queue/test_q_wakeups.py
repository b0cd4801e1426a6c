"""The wake-up signal: a submit to an idle queue publishes the queue name on jq:wakeups."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from jobqueue.models import build_spec
from jobqueue.protocol import WAKEUPS_CHANNEL, QueueProtocol, submitting
from qhelpers import ProtoFactory

pytestmark = pytest.mark.redis

_SENTINEL = "--sentinel--"


class Wakeups:
    """A subscriber to the wake-up channel that reads everything published up to now."""

    def __init__(self, pubsub: aioredis.client.PubSub, publisher: aioredis.Redis) -> None:
        self._pubsub = pubsub
        self._publisher = publisher

    async def received(self) -> list[str]:
        """Messages published so far: a sentinel is published after them (the server keeps
        the order), so reading up to it needs no sleep and cannot miss a late message."""
        await self._publisher.publish(WAKEUPS_CHANNEL, _SENTINEL)
        got: list[str] = []
        async with asyncio.timeout(10):
            while True:
                # None also stands for a skipped subscribe confirmation: keep reading
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is None:
                    continue
                if message["data"] == _SENTINEL:
                    return got
                got.append(message["data"])


@pytest.fixture
async def wakeups(rclient: aioredis.Redis) -> AsyncIterator[Wakeups]:
    pubsub = rclient.pubsub()
    await pubsub.subscribe(WAKEUPS_CHANNEL)
    try:
        yield Wakeups(pubsub, rclient)
    finally:
        await pubsub.aclose()


async def test_a_submit_to_an_idle_queue_publishes_its_name_once(
    make_proto: ProtoFactory, wakeups: Wakeups
) -> None:
    proto = make_proto("idle-one")
    await proto.submit(build_spec("job"), "a")
    assert await wakeups.received() == ["idle-one"]


async def test_a_submit_to_a_queue_with_ready_jobs_publishes_nothing(
    proto: QueueProtocol, wakeups: Wakeups
) -> None:
    await proto.submit(build_spec("job"), "a")
    assert await wakeups.received() == ["q"]
    await proto.submit(build_spec("job"), "b")
    await proto.submit_many([build_spec("job")] * 3, ["c", "d", "e"])
    assert await wakeups.received() == []


async def test_a_submit_to_a_queue_with_only_leased_jobs_publishes_nothing(
    proto: QueueProtocol, wakeups: Wakeups
) -> None:
    await proto.submit(build_spec("job"), "a")
    assert [j.id for j in await proto.take("w", 5, 30)] == ["a"]
    assert await wakeups.received() == ["q"]
    await proto.submit(build_spec("job"), "b")
    assert await wakeups.received() == []


async def test_a_queue_that_drains_is_idle_again(proto: QueueProtocol, wakeups: Wakeups) -> None:
    await proto.submit(build_spec("job"), "a")
    (job,) = await proto.take("w", 5, 30)
    await proto.complete("w", [(job.id, job.token, None)])
    assert await wakeups.received() == ["q"]
    await proto.submit(build_spec("job"), "b")
    assert await wakeups.received() == ["q"]


async def test_submit_many_publishes_once_for_all_its_batches(
    proto: QueueProtocol, wakeups: Wakeups
) -> None:
    n = 3 * submitting.BATCH_JOBS  # three script calls: only the first saw an idle queue
    await proto.submit_many([build_spec("job")] * n, [f"m{i}" for i in range(n)])
    assert await wakeups.received() == ["q"]
    assert await proto.redis.zcard(proto.keys.queued) == n


async def test_a_delayed_submit_to_an_empty_queue_publishes_once(
    proto: QueueProtocol, wakeups: Wakeups
) -> None:
    """An operator lets the loop of an empty queue at zero replicas sleep until woken
    (operator/jobqueue_operator/idle.py): the first delayed job must wake it, so it polls
    again and sees the job fall due. Later delayed jobs find one waiting and stay quiet."""
    await proto.submit(build_spec("job", delay=60), "later")
    assert await wakeups.received() == ["q"]
    await proto.submit_many([build_spec("job", delay=5)] * 2, ["l1", "l2"])
    assert await wakeups.received() == []
    # delayed jobs alone leave the queue idle: the first ready job announces it
    await proto.submit_many([build_spec("job", delay=5), build_spec("job")], ["l3", "now"])
    assert await wakeups.received() == ["q"]


async def test_a_retry_that_makes_an_idle_queue_busy_publishes_its_name(
    proto: QueueProtocol, wakeups: Wakeups
) -> None:
    """A dead job retried from the CLI or the dashboard is work for a queue at zero
    replicas, as a submit is: one retry and a retry of all both announce it."""
    for jid in ("a", "b"):
        await proto.submit(build_spec("job", attempts=1), jid)
        (job,) = await proto.take("w", 5, 30)
        await proto.fail(job.id, job.token, "bad", retry_delay=None)
    assert await wakeups.received() == ["q", "q"]
    assert await proto.retry("a") == "ok"
    assert await wakeups.received() == ["q"]
    (job,) = await proto.take("w", 5, 30)
    assert (await proto.retry_all()).retried == 1  # "a" is leased: the queue is busy
    assert await wakeups.received() == []
    await proto.complete("w", [(job.id, job.token, None)])
    (job,) = await proto.take("w", 5, 30)
    await proto.fail(job.id, job.token, "bad", retry_delay=None)
    assert (await proto.retry_all()).retried == 1
    assert await wakeups.received() == ["q"]


async def test_a_deduplicated_submit_publishes_nothing(
    proto: QueueProtocol, wakeups: Wakeups
) -> None:
    await proto.submit(build_spec("job", dedup_key="k"), "a")
    (job,) = await proto.take("w", 5, 30)
    assert await wakeups.received() == ["q"]
    jid, created = await proto.submit(build_spec("job", dedup_key="k"), "b")
    assert (jid, created) == (job.id, False)
    assert await wakeups.received() == []
