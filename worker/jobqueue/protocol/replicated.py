"""Submits acknowledged only once replicas have them (``wait_replicas``).

Redis replicates asynchronously: a master that acknowledged a write and then died before
sending it on loses it, and a failover promotes a replica without it. ``WAIT n timeout``
returns once ``n`` replicas have every write made so far on *the connection it is sent
on*, so it goes in the same pipeline as the submit scripts (one connection, one round trip
more of latency, no extra call). Sentinel and Redis Cluster promote the replica that got
furthest, so a job one replica had survives the failover of its master (not a guarantee
against every sequence of failures: Redis is no consensus store).

In a Redis Cluster the WAIT is sent to the node that owns the queue's slot, which is where
the scripts ran unless the slot moved in between (then the submit is retried elsewhere by
the client and this WAIT proves nothing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import SentinelConnectionPool

from jobqueue.errors import ReplicationTimeout

if TYPE_CHECKING:
    from jobqueue.protocol.queue import QueueProtocol

__all__ = ["add_wait", "check"]


def add_wait(pipe: Any, proto: QueueProtocol) -> None:
    """Append the WAIT for ``proto.wait_replicas`` to a pipeline of its scripts."""
    args = ("WAIT", proto.wait_replicas, proto.wait_timeout_ms)
    if isinstance(proto.redis, RedisCluster):
        node = proto.redis.get_node_from_key(proto.keys.queued)
        pipe.execute_command(*args, target_nodes=node)
    else:
        pipe.execute_command(*args)


async def check(proto: QueueProtocol, acked: Any, replies: list[Any]) -> None:
    """Raise ReplicationTimeout when fewer replicas than asked confirmed the submits.

    On a Sentinel-managed client the pool's connections are dropped first: a master whose
    replicas stopped confirming may have been demoted while still up (its clients are told
    only once the sentinels reconfigure it, up to 10 s later), and the next submit asks the
    sentinels where the master is now."""
    if isinstance(acked, Exception):
        raise acked
    if int(acked) >= proto.wait_replicas:
        return
    pool = getattr(proto.redis, "connection_pool", None)
    if isinstance(pool, SentinelConnectionPool):
        await pool.disconnect(inuse_connections=False)  # the idle ones: this one too
    ids = [reply[i] for reply in replies for i in range(0, len(reply), 2)]
    raise ReplicationTimeout(proto.queue, ids, int(acked), proto.wait_replicas)
