"""The operator's queue source on a real Redis Cluster and a real Sentinel set, from the URL of
spec.redis alone: reads (one pipeline per cluster node), settings, the eviction check and the
wake-up subscription (a submit on any node wakes the loop)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from jobqueue import AsyncQueue
from jobqueue.protocol import QueueKeys
from jobqueue_operator.sources import jobqueue as jobqueue_source
from jobqueue_operator.sources.jobqueue import JobQueueSource, RedisPools
from jobqueue_operator.spec import QueueSettingsSpec
from redis.asyncio.cluster import RedisCluster
from redistopology import ClusterSet, SentinelSet

pytestmark = pytest.mark.redis


def cluster_url(nodes: list[tuple[str, int]]) -> str:
    return "redis+cluster://" + ",".join(f"{h}:{p}" for h, p in nodes)


async def _until(predicate: Callable[[], bool], what: str, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_queues_on_every_cluster_node_are_read_together(
    cluster: RedisCluster, redis_cluster: list[tuple[str, int]]
) -> None:
    url = cluster_url(redis_cluster)
    names = [f"op-{i}" for i in range(12)]
    for i, name in enumerate(names):
        await AsyncQueue(name, redis=cluster).submit_many([{"name": "noop"}] * i)
    nodes = {cluster.get_node_from_key(QueueKeys(n).queued).name for n in names}  # type: ignore[union-attr]
    assert len(nodes) == 3  # the queues are spread over all three masters
    pools = RedisPools()
    sources = [JobQueueSource(pools, url, name) for name in names]
    try:
        observations = await asyncio.gather(*(s.read() for s in sources))
        assert [o.metrics.queued for o in observations] == list(range(12))
        assert pools.reads(url, None).batches == 1  # one batch, split per node by the client
        wanted = QueueSettingsSpec.model_validate({"keepCompleted": 7})
        await sources[5].configure(wanted.to_queue_settings())
        stored = await AsyncQueue(names[5], redis=cluster).read_settings()
        assert stored.keep_completed == 7
    finally:
        for source in sources:
            await source.close()
    assert len(pools) == 0


async def test_an_evicting_cluster_node_is_reported(
    cluster: RedisCluster, redis_cluster: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobqueue_source, "EVICTION_CHECK_SECONDS", 0.0)
    await cluster.initialize()
    last = cluster.get_primaries()[-1]
    pools = RedisPools()
    source = JobQueueSource(pools, cluster_url(redis_cluster), "evicting")
    try:
        assert (await source.read()).redis_problem is None
        await cluster.config_set("maxmemory-policy", "allkeys-random", target_nodes=last)
        problem = (await source.read()).redis_problem
        assert problem is not None and "'allkeys-random'" in problem
    finally:
        await cluster.config_set("maxmemory-policy", "noeviction", target_nodes=last)
        await source.close()


async def test_a_submit_on_any_cluster_node_wakes_its_queues_loop(
    cluster: RedisCluster, redis_cluster: list[tuple[str, int]]
) -> None:
    url = cluster_url(redis_cluster)
    names = [f"wake-{i}" for i in range(9)]
    pools = RedisPools()
    sources = [JobQueueSource(pools, url, name) for name in names]
    woken: list[str] = []
    for name, source in zip(names, sources, strict=True):
        source.on_work(lambda name=name: woken.append(name))  # type: ignore[misc]
    listener = pools.wakeups(url, None)
    try:
        await _until(lambda: listener.connected, "the subscription")
        woken.clear()
        for name in names:  # their slots are on all three masters
            await AsyncQueue(name, redis=cluster).submit("noop")
        await _until(lambda: sorted(woken) == sorted(names), "a wake-up for every queue")
    finally:
        for source in sources:
            await source.close()


async def test_the_source_reads_the_master_the_sentinels_name(
    sentinel_set: SentinelSet,
) -> None:
    async with AsyncQueue("sentinel-read", sentinel_set.url) as q:
        await q.submit_many([{"name": "noop"}] * 4)
    pools = RedisPools()
    source = JobQueueSource(pools, sentinel_set.url, "sentinel-read")
    idle = JobQueueSource(pools, sentinel_set.url, "sentinel-idle")
    woken: list[str] = []
    idle.on_work(lambda: woken.append("idle"))
    try:
        assert (await source.read()).metrics.queued == 4
        listener = pools.wakeups(sentinel_set.url, None)
        await _until(lambda: listener.connected, "the subscription")
        woken.clear()
        async with AsyncQueue("sentinel-idle", sentinel_set.url) as q:
            await q.submit("noop")
        await _until(lambda: woken == ["idle"], "the wake-up")
    finally:
        await source.close()
        await idle.close()
    assert len(pools) == 0


@pytest.mark.slow
async def test_wake_ups_resume_after_the_subscriptions_node_fails_over(
    replicated_cluster: ClusterSet,
) -> None:
    nodes = replicated_cluster
    pools = RedisPools()
    source = JobQueueSource(pools, nodes.url, "wake-after")
    woken: list[str] = []
    source.on_work(lambda: woken.append("x"))
    listener = pools.wakeups(nodes.url, None)
    try:
        await _until(lambda: listener.connected, "the subscription")
        [listening] = [n for n in nodes.running() if _subscribers(n.port) == 1]
        listening.kill()
        await _until(lambda: not listener.connected, "the subscription lost")
        await asyncio.to_thread(nodes.wait_ok, min_replicas=0)  # its replica took over
        await _until(lambda: listener.connected, "the subscription again", within=60)
        woken.clear()
        async with AsyncQueue("wake-after", nodes.url) as q:
            await q.submit("noop")
        await _until(lambda: woken == ["x"], "a wake-up after the failover")
    finally:
        await source.close()


def _subscribers(port: int) -> int:
    import redis

    with redis.Redis(port=port, decode_responses=True) as client:
        return int(client.pubsub_numsub("jq:wakeups")[0][1])
