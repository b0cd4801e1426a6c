"""Calls across many queues of one Redis in one round trip (the operator's reads)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError

from jobqueue.protocol.queue import AnyRedis, QueueProtocol
from jobqueue.protocol.replies import StatsSnapshot, decode_snapshot
from jobqueue.protocol.scripts import script_source

__all__ = ["stats_of_many"]


async def stats_of_many(
    protocols: Sequence[QueueProtocol], window_seconds: Sequence[int]
) -> list[StatsSnapshot | Exception]:
    """``stats`` of many queues on one Redis client in one round trip (a pipeline, not a
    transaction: each script is atomic on its own; on a Redis Cluster one round trip per
    node, concurrently). A queue whose script fails gets its error in its place; a
    connection error raises for all."""
    if not protocols:
        return []
    redis = protocols[0].redis
    calls = [
        p._evalsha_args("stats", int(w * 1000))
        for p, w in zip(protocols, window_seconds, strict=True)
    ]
    replies = await _evalsha_pipelined(redis, calls)
    if any(isinstance(r, NoScriptError) for r in replies):  # a restarted or new server
        await redis.script_load(script_source("stats"))
        replies = await _evalsha_pipelined(redis, calls)
    return [r if isinstance(r, Exception) else decode_snapshot(r) for r in replies]


async def _evalsha_pipelined(redis: AnyRedis, calls: list[list[Any]]) -> list[Any]:
    """One pipeline; on a Redis Cluster, redis-py splits it into one pipeline per node
    (by each call's keys, all in its queue's slot) and sends them concurrently, following
    MOVED/ASK for the calls of a slot that moved."""
    pipe = redis.pipeline(transaction=False)
    for call in calls:
        # execute_command: ClusterPipeline blocks its evalsha() method, not the command
        pipe.execute_command("EVALSHA", *call)
    return list(await pipe.execute(raise_on_error=False))
