"""Waiting for work without polling, and cancel requests as they come.

Idle workers block on the queues' ``marker`` zsets (BZPOPMIN) for at most the time until the
next due delayed job or lapsing lease, as the Redis server's clock counts it (``hint.lua``):
a worker whose own clock runs ahead would otherwise see work as due, return at once, find
nothing to take and spin.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from redis.asyncio.cluster import RedisCluster

from jobqueue.protocol.queue import QueueProtocol
from jobqueue.protocol.replies import LeasedJob

__all__ = ["cancel_requests", "wait_for_any", "wait_then_take", "wake_worker"]

_WAKE_KEY_TTL_MS = 60_000  # a worker's own wake-up key outlives no wait


async def _work_hint(proto: QueueProtocol) -> float:
    """Seconds until this queue may have work: 0 now, else until the next due delayed job
    or lapsing lease (inf if neither), by the server's clock (or the injected one)."""
    ms = int(await proto._call("hint"))
    return float("inf") if ms < 0 else ms / 1000.0


async def wait_for_any(
    protocols: Iterable[QueueProtocol],
    timeout: float,  # noqa: ASYNC109 - a deadline for BZPOPMIN, not a cancel scope
) -> bool:
    """Block until any of the queues may have work (see ``QueueProtocol.wait_for_work``).
    A single call blocks at most ``max_block`` seconds (False then too): callers loop.

    Queues on one plain Redis client share a single BZPOPMIN over their markers; otherwise
    (Redis Cluster: markers in different slots) one BZPOPMIN per queue runs concurrently.
    """
    protos = list(protocols)
    if not protos:
        await asyncio.sleep(timeout)
        return False
    hints = await asyncio.gather(*(_work_hint(p) for p in protos))
    soonest = min(hints)
    if soonest <= 0.001:
        return True
    block = min(timeout, soonest, *(p.max_block for p in protos))
    if block <= 0:
        return False
    clients = {id(p.redis) for p in protos}
    popped: Any
    if len(clients) == 1 and not isinstance(protos[0].redis, RedisCluster):
        markers = [p.keys.marker for p in protos]
        popped = await protos[0].redis.bzpopmin(markers, timeout=block)
    else:
        popped = await _first_marker(protos, block)
    return bool(popped) or soonest <= timeout


async def wait_then_take(
    protocols: Sequence[QueueProtocol],
    worker_id: str,
    n: int,
    lease_seconds: float,
    timeout: float,  # noqa: ASYNC109 - a deadline for BZPOPMIN, not a cancel scope
    *,
    request_id: str = "",
) -> list[LeasedJob] | None:
    """Block like ``wait_for_any``, with the first queue's take pipelined right behind the
    BZPOPMIN: Redis leases jobs the moment the wait ends, so an idle worker gets its first
    job one round trip after the submit instead of two. Returns the jobs taken (possibly
    none), or None when this cannot be done in one pipeline (Redis Cluster, several
    clients): the caller then waits with ``wait_for_any`` and takes.

    Do not cancel it while it blocks (the take may already have run): to end the wait early
    call ``wake_worker`` with the same ``worker_id``, and the jobs it took come back. A reply
    lost anyway (a socket error) can be recovered with ``request_id``.
    """
    protos = list(protocols)
    first = protos[0]
    if isinstance(first.redis, RedisCluster) or len({id(p.redis) for p in protos}) != 1:
        return None
    hints = await asyncio.gather(*(_work_hint(p) for p in protos))
    soonest = min(hints)
    if soonest > 0.001:
        block = min(timeout, soonest, *(p.max_block for p in protos))
        if block > 0:
            markers = [p.keys.marker for p in protos] + [first.keys.worker_wake(worker_id)]
            return await first.take_after_block(
                markers, block, worker_id, n, lease_seconds, request_id=request_id
            )
    return await first.take(worker_id, n, lease_seconds, request_id=request_id)


async def wake_worker(protocols: Sequence[QueueProtocol], worker_id: str) -> None:
    """End a ``wait_then_take`` of ``worker_id`` at once (its take still runs and returns)."""
    first = protocols[0]
    key = first.keys.worker_wake(worker_id)
    pipe = first.redis.pipeline(transaction=False)
    pipe.zadd(key, {"1": 0})
    pipe.pexpire(key, _WAKE_KEY_TTL_MS)  # gone by itself if the wait had ended already
    await pipe.execute()


async def _first_marker(protos: list[QueueProtocol], block: float) -> Any:
    tasks = [
        asyncio.ensure_future(p.redis.bzpopmin([p.keys.marker], timeout=block)) for p in protos
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return next(iter(done)).result()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def cancel_requests(protocols: Sequence[QueueProtocol]) -> AsyncIterator[tuple[str, str]]:
    """Yield (queue, job id) for each cancel request of an active job on these queues, as
    announced by cancel.lua. A hint only: the worker confirms it through ``renew`` (the cancel
    flag in the job hash is the truth), and requests missed while disconnected are still
    seen at the next regular renewal."""
    protos = list(protocols)
    if not protos:
        return
    channels = {p.keys.cancel_channel: p.queue for p in protos}
    pubsub: Any = protos[0].redis.pubsub()
    me = asyncio.current_task()
    try:
        await pubsub.subscribe(*channels)
        # redis-py can swallow a cancel that lands while it connects (8.1): honour it here.
        while me is None or not me.cancelling():
            message = await pubsub.get_message(
                ignore_subscribe_messages=True, timeout=protos[0].max_block
            )
            if message and message.get("type") == "message":
                queue = channels.get(message["channel"])
                if queue is not None:
                    yield queue, str(message["data"])
        raise asyncio.CancelledError
    finally:
        # Bounded: a cancel that lands while redis-py is still subscribing can leave
        # aclose() waiting forever (seen with redis-py 8.1), which would hang shutdown.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(pubsub.aclose()), 1.0)
