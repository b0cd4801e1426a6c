"""The key layout on a real three-master Redis Cluster: each queue lives in one slot, and
queues on different masters work side by side through redis.asyncio.RedisCluster."""

from __future__ import annotations

import asyncio

import pytest
from jobqueue.client import AsyncQueue
from jobqueue.models import JobState, WorkerInfo
from jobqueue.protocol import LeaseStatus
from jobqueue.stats import StatsReader, read_many, read_stats
from redis.asyncio.cluster import RedisCluster

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def queues_on_different_masters(client: RedisCluster, count: int) -> list[str]:
    chosen: dict[str, str] = {}
    i = 0
    while len(chosen) < count:
        name = f"queue-{i}"
        node = client.get_node_from_key(f"{{jq:{name}}}:queued")
        assert node is not None
        chosen.setdefault(node.name, name)
        i += 1
    return list(chosen.values())


async def test_queues_on_three_masters(cluster: RedisCluster) -> None:
    names = queues_on_different_masters(cluster, 3)
    for name in names:
        q = AsyncQueue(name, redis=cluster)
        proto = q.protocol
        first = await q.submit("job", {"q": name}, priority=3)
        more = await q.submit_many([{"name": "bulk", "payload": i} for i in range(20)])
        jobs = await proto.take("w1", 2, 30)
        assert jobs[0].id == first and jobs[1].id == more[0]
        res = await proto.complete("w1", [(j.id, j.token, "done") for j in jobs], take_next=5)
        assert res.statuses == [LeaseStatus.OK, LeaseStatus.OK]
        assert [j.payload for j in res.next_jobs] == [1, 2, 3, 4, 5]
        failed = res.next_jobs[0]
        await proto.fail(failed.id, failed.token, "x", retry_delay=None)
        assert (await q.wait(first, timeout=5)).result == "done"
        await proto.heartbeat(
            WorkerInfo(id="w1", name="pod", host="h", pid=1, queues=[name], concurrency=1),
            stale_after=90,
        )
        stats = await read_stats(cluster, name)
        assert (stats.queued, stats.active, stats.completed, stats.failed) == (14, 4, 2, 1)
        assert [w.id for w in stats.workers] == ["w1"]
        assert stats.attempts_succeeded == 2 and stats.attempts_failed == 1
        assert (await q.retry_all()).retried == 1
        assert (await q.get(failed.id)).state is JobState.QUEUED
        assert len(await q.list("completed")) == 2
    assert await cluster.smembers("jq:queues") == set(names)
    # One pipeline over the three masters reads what each queue's own read does.
    many = await read_many([StatsReader(cluster, name) for name in names])
    one_by_one = [await read_stats(cluster, name) for name in names]
    assert [(s.queue, s.queued, s.failed) for s in many] == [  # type: ignore[union-attr]
        (s.queue, s.queued, s.failed) for s in one_by_one
    ]


async def test_idle_wait_wakes_on_submit_in_a_cluster(cluster: RedisCluster) -> None:
    a, b = queues_on_different_masters(cluster, 2)
    qa, qb = AsyncQueue(a, redis=cluster), AsyncQueue(b, redis=cluster)
    from jobqueue.protocol import wait_for_any

    assert await wait_for_any([qa.protocol, qb.protocol], 0.05) is False
    waiter = asyncio.create_task(wait_for_any([qa.protocol, qb.protocol], 30))
    await asyncio.sleep(0.1)
    assert not waiter.done()
    await qb.submit("job")
    assert await asyncio.wait_for(waiter, 10) is True


async def test_wait_then_take_leaves_a_cluster_to_wait_for_any(cluster: RedisCluster) -> None:
    from jobqueue.protocol import wait_then_take

    (name,) = queues_on_different_masters(cluster, 1)
    q = AsyncQueue(name, redis=cluster)
    await q.submit("job")
    assert await wait_then_take([q.protocol], "w", 5, 30, 30) is None
    assert (await q.stats()).queued == 1  # nothing was taken
