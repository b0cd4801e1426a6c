"""Calls across many queues of one Redis in one round trip (the operator's reads)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, ResponseError

from jobqueue.protocol.queue import QueueProtocol
from jobqueue.protocol.replies import StatsSnapshot, decode_snapshot
from jobqueue.protocol.scripts import script_source

__all__ = ["stats_of_many"]


async def stats_of_many(
    protocols: Sequence[QueueProtocol], window_seconds: Sequence[int]
) -> list[StatsSnapshot | Exception]:
    """``stats`` of many queues on one Redis client in one round trip (a pipeline, not a
    transaction: each script is atomic on its own). A queue whose script fails gets its
    error in its place; a connection error raises for all."""
    if not protocols:
        return []
    redis = protocols[0].redis
    if isinstance(redis, RedisCluster):
        # redis-py refuses EVALSHA in a cluster pipeline: one call per queue, concurrently.
        return list(
            await asyncio.gather(
                *(_stats_or_error(p, w) for p, w in zip(protocols, window_seconds, strict=True))
            )
        )
    calls = [
        p._evalsha_args("stats", int(w * 1000))
        for p, w in zip(protocols, window_seconds, strict=True)
    ]
    replies = await _evalsha_pipelined(redis, calls)
    if any(isinstance(r, NoScriptError) for r in replies):  # a restarted or new server
        await redis.script_load(script_source("stats"))
        replies = await _evalsha_pipelined(redis, calls)
    return [r if isinstance(r, Exception) else decode_snapshot(r) for r in replies]


async def _evalsha_pipelined(redis: aioredis.Redis, calls: list[list[Any]]) -> list[Any]:
    pipe = redis.pipeline(transaction=False)
    for call in calls:
        pipe.evalsha(*call)
    return list(await pipe.execute(raise_on_error=False))


async def _stats_or_error(
    protocol: QueueProtocol, window_seconds: int
) -> StatsSnapshot | Exception:
    try:
        return await protocol.stats(window_seconds)
    except ResponseError as exc:
        return exc
