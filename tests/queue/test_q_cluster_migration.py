"""A queue's slot migrates to another master of a real three-master Redis Cluster while
workers take, run and complete its jobs and a client keeps submitting: nothing is lost or
stranded. Scripts declare their keys, so a call that would touch a key already moved is
refused before it writes (TRYAGAIN/ASK), never half done; the worker retries."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
import redis
from jobqueue.client import AsyncQueue
from jobqueue.models import FINISHED_STATES
from jobqueue.protocol import QueueKeys
from jobqueue.registry import Registry
from jobqueue.runtime.context import JobContext
from jobqueue.runtime.metrics import WorkerMetrics
from jobqueue.runtime.redis_backend import RedisBackend
from jobqueue.runtime.settings import WorkerSettings
from jobqueue.runtime.worker import Worker
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError
from waits import wait_until

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(300)]

QUEUE = "migrating"
BEFORE, DURING = 1500, 200
STATE_INDEXES = ("queued", "delayed", "active", "completed", "failed", "cancelled")


def node_ids(ports: list[int]) -> dict[int, str]:
    ids = {}
    for port in ports:
        with redis.Redis(port=port, decode_responses=True) as node:
            ids[port] = node.execute_command("CLUSTER", "MYID")
    return ids


async def migrate_slot(slot: int, source: int, target: int, ports: list[int]) -> int:
    """Move every key of ``slot`` from ``source`` to ``target`` a few at a time (as
    redis-cli --cluster reshard does), so the queue's keys sit on both sides for a while:
    the worst order for the queue, its indexes before its job records."""
    ids = node_ids(ports)
    src = redis.Redis(port=source, decode_responses=True)
    dst = redis.Redis(port=target, decode_responses=True)
    moved = 0
    try:
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target])
        while found := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 5000):
            found.sort(key=lambda key: ":job:" in key)
            for start in range(0, len(found), 15):
                keys = found[start : start + 15]
                with contextlib.suppress(redis.ResponseError):  # a key gone meanwhile
                    src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
                moved += len(keys)
                await asyncio.sleep(0.02)  # workers and clients run between the batches
        for port in ports:
            with redis.Redis(port=port) as node:
                node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[target])
    finally:
        src.close()
        dst.close()
    return moved


async def echo(ctx: JobContext, payload: Any) -> Any:
    await asyncio.sleep(0.02)
    return payload


async def test_a_slot_migration_under_load_loses_and_strands_nothing(
    cluster: RedisCluster, redis_cluster: list[tuple[str, int]]
) -> None:
    ports = [port for _, port in redis_cluster]
    q = AsyncQueue(QUEUE, redis=cluster)
    keys = QueueKeys(QUEUE)
    slot = cluster.keyslot(keys.queued)
    source_node = cluster.get_node_from_key(keys.queued)
    assert source_node is not None
    source = source_node.port
    target = next(p for p in ports if p != source)
    ids = await q.submit_many([{"name": "echo", "payload": i} for i in range(BEFORE)])

    registry = Registry()
    registry.register("echo", echo)
    workers = []
    for name in ("w1", "w2"):
        settings = WorkerSettings(queues=[QUEUE], metrics_port=0, worker_name=name,
                                  concurrency=8, lease_seconds=3)  # fmt: skip
        worker = Worker(settings, RedisBackend(cluster, settings), registry=registry,
                        metrics=WorkerMetrics())  # fmt: skip
        workers.append((worker, asyncio.create_task(worker.run())))

    refused = 0

    async def keep_submitting() -> list[str]:
        nonlocal refused
        submitted: list[str] = []
        for i in range(DURING):
            for _ in range(200):  # refused while the slot moves: try again
                try:
                    submitted.append(await q.submit("echo", BEFORE + i))
                    break
                # RedisError (TRYAGAIN, ASK...), and whatever redis-py's cluster client
                # raises while it reconnects (seen: AttributeError on a closed writer)
                except Exception:
                    refused += 1
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.01)
        return submitted

    async def finished() -> int:
        snap = await q.protocol.stats(60)
        return snap.completed

    try:
        await wait_until(lambda: _at_least(finished, BEFORE // 4), within=120)  # busy: migrate
        submitter = asyncio.create_task(keep_submitting())
        moved = await migrate_slot(slot, source, target, ports)
        ids += await submitter
        assert len(ids) == BEFORE + DURING and moved > 0
        assert await finished() < len(ids)  # the workers were still busy when it ended
        deadline = asyncio.get_running_loop().time() + 180
        while True:
            with contextlib.suppress(RedisError):
                snap = await q.protocol.stats(60)
                if snap.queued + snap.active + snap.delayed == 0 and snap.completed == len(ids):
                    break
            assert asyncio.get_running_loop().time() < deadline, "jobs were stranded"
            await asyncio.sleep(0.2)
    finally:
        for worker, _ in workers:
            worker.stop()
            worker.stop()
        await asyncio.gather(*(task for _, task in workers), return_exceptions=True)

    target_node = cluster.get_node_from_key(keys.queued)
    assert target_node is not None and target_node.port == target
    records = await q.protocol.get_many_fields(ids)
    members = {s: set(await cluster.zrange(keys.key(s), 0, -1)) for s in STATE_INDEXES}
    for jid, fields in zip(ids, records, strict=True):
        assert fields.get("state") in FINISHED_STATES, (jid, fields)
        where = [s for s, found in members.items() if jid in found]
        assert where == ["completed"], (jid, where, fields)
    assert refused > 0  # the migration really got in the way of the queue's calls
    assert sum(w.metrics.redis_errors._value.get() for w, _ in workers) > 0
    results = sorted(int(f["result"]) for f in records)
    assert results == list(range(BEFORE + DURING))  # each job ran to its own result once


async def _at_least(count: Any, target: int) -> bool:
    return bool(await count() >= target)
