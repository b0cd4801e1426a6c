"""Every part of jobqueue used through the one URL setting against a real Redis Cluster and a real
Sentinel set: the client, ``jobq``, ``jobq worker`` (serving queues that live on different
cluster nodes), the batched statistics (one pipeline per node), the eviction check (every
node) and submits acknowledged by replicas (WAIT)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from jobqueue.client import AsyncQueue
from jobqueue.connection import connect
from jobqueue.errors import ReplicationTimeout
from jobqueue.eviction import eviction_policy
from jobqueue.protocol import QueueKeys
from jobqueue.stats import StatsReader, read_many
from redis.asyncio.cluster import RedisCluster
from redistopology import SentinelSet

pytestmark = pytest.mark.redis


def cluster_url(nodes: list[tuple[str, int]], query: str = "") -> str:
    return "redis+cluster://" + ",".join(f"{h}:{p}" for h, p in nodes) + query


def queues_on_different_nodes(cluster: RedisCluster, count: int) -> list[str]:
    """``count`` queue names whose slots are served by ``count`` different masters."""
    chosen: dict[str, str] = {}
    for i in range(1000):
        name = f"spread-{i}"
        node = cluster.get_node_from_key(QueueKeys(name).queued)
        assert node is not None
        chosen.setdefault(node.name, name)
        if len(chosen) == count:
            return list(chosen.values())
    raise AssertionError("the cluster has fewer masters than asked for")


def jobq(url: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JOBQUEUE_METRICS_PORT": "0"}
    return subprocess.run(
        [sys.executable, "-m", "jobqueue.cli", "--redis", url, *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


async def test_a_worker_serves_queues_that_live_on_different_cluster_nodes(
    cluster: RedisCluster, redis_cluster: list[tuple[str, int]]
) -> None:
    url = cluster_url(redis_cluster)
    names = queues_on_different_nodes(cluster, 3)
    ids: dict[str, list[str]] = {}
    for name in names:
        async with AsyncQueue(name, url) as q:  # the client from the URL alone
            ids[name] = await q.submit_many(
                [{"name": "debug.echo", "payload": i} for i in range(20)]
            )
    done = jobq(url, "worker", *names, "--burst", "--concurrency", "8")
    assert done.returncode == 0, done.stderr
    for name in names:
        async with AsyncQueue(name, redis=cluster) as q:
            jobs = [await q.get(i) for i in ids[name]]
        assert [(j.state.value, j.result) for j in jobs] == [("completed", i) for i in range(20)]
    listed = jobq(url, "queues", "--json")
    assert listed.returncode == 0, listed.stderr
    assert set(names) <= {row["queue"] for row in json.loads(listed.stdout)}


async def test_the_statistics_of_many_queues_go_out_as_one_pipeline_per_node(
    cluster: RedisCluster, redis_cluster: list[tuple[str, int]]
) -> None:
    names = [f"stats-{i}" for i in range(90)]
    for name in names:
        await AsyncQueue(name, redis=cluster).submit("noop")
    reader = connect(cluster_url(redis_cluster, "?client_name=stats-reader"))
    try:
        rows = await read_many([StatsReader(reader, name) for name in names])
        assert [getattr(r, "queued", r) for r in rows] == [1] * len(names)
        per_node = [
            sum(1 for c in await cluster.client_list(target_nodes=node)
                if c["name"] == "stats-reader")
            for node in cluster.get_primaries()
        ]  # fmt: skip
    finally:
        await reader.aclose()
    # One connection per node carried its node's reads (the client's first node also
    # answered its start-up questions on one more); one call per queue needed ~30 each.
    assert all(n >= 1 for n in per_node) and sum(per_node) <= len(per_node) + 1, per_node


async def test_an_evicting_policy_on_any_cluster_node_is_found(cluster: RedisCluster) -> None:
    await cluster.initialize()
    default = cluster.get_default_node()
    other = next(n for n in cluster.get_primaries() if n.name != default.name)
    await cluster.config_set("maxmemory-policy", "allkeys-lru", target_nodes=other)
    try:
        assert await eviction_policy(cluster) == "allkeys-lru"
    finally:
        await cluster.config_set("maxmemory-policy", "noeviction", target_nodes=other)
    assert await eviction_policy(cluster) == "noeviction"


async def test_the_client_follows_the_master_the_sentinels_name(
    sentinel_set: SentinelSet,
) -> None:
    async with AsyncQueue("via-sentinel", sentinel_set.url + "?wait_replicas=2") as q:
        job_id = await q.submit("debug.echo", {"n": 1})
        master = sentinel_set.server(sentinel_set.master_port())
        with master.client(decode_responses=True) as direct:
            assert direct.hget(QueueKeys("via-sentinel").job(job_id), "state") == "queued"
        # acknowledged by both replicas: each has it already
        for replica in sentinel_set.servers:
            if replica is not master:
                with replica.client(decode_responses=True) as direct:
                    assert direct.exists(QueueKeys("via-sentinel").job(job_id))
    done = jobq(sentinel_set.url, "worker", "via-sentinel", "--burst")
    assert done.returncode == 0, done.stderr
    shown = jobq(sentinel_set.url, "status", "via-sentinel", job_id, "--json")
    assert shown.returncode == 0 and '"completed"' in shown.stdout, shown.stderr


async def test_a_submit_no_replica_confirmed_in_time_is_reported(redis_url: str) -> None:
    # the session's server has no replicas at all: WAIT 1 can only time out
    async with AsyncQueue("lonely", redis_url + "?wait_replicas=1&wait_timeout=0.1") as q:
        with pytest.raises(ReplicationTimeout, match="reached 0 of the 1 replica") as late:
            await q.submit("noop")
        with pytest.raises(ReplicationTimeout) as late_many:
            await q.submit_many([{"name": "noop"}, {"name": "noop"}])
        # the jobs are there all the same (on this one server): the error names them
        states = await q.protocol.states([*late.value.job_ids, *late_many.value.job_ids])
        assert states == ["queued"] * 3
    async with AsyncQueue("lonely", redis_url) as q:  # without the option: no WAIT
        await q.submit("noop")


def test_jobq_refuses_a_bad_url_in_one_line_with_exit_2() -> None:
    done = jobq("redis+sentinel://user:hunter2@127.0.0.1:1", "queues")
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert "names the master after the hosts" in line and "hunter2" not in line


async def test_a_sentinel_client_asks_again_for_the_master_after_a_replication_timeout(
    sentinel_set: SentinelSet,
) -> None:
    """The master may have been demoted while still up (its clients learn it only up to
    10 s later): after a ReplicationTimeout the next command connects anew, through the
    sentinels."""
    url = sentinel_set.url + "?wait_replicas=3&wait_timeout=0.1"  # one more than there are
    async with AsyncQueue("asks-again", url) as q:
        await q.protocol.read_settings()
        before = await q.redis.client_id()
        with pytest.raises(ReplicationTimeout):
            await q.submit("noop")
        assert await q.redis.client_id() != before
        same = await q.redis.client_id()
        await q.protocol.read_settings()
        assert await q.redis.client_id() == same  # otherwise the connection is kept
