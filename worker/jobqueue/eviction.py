"""Is this Redis safe for job records? A Redis that evicts keys under memory pressure (any
``maxmemory-policy`` but ``noeviction``) deletes job hashes and indexes at random: jobs
vanish without a trace. Workers refuse to start on one (unless told otherwise) and the
operator reports it as a condition.

The policy is read from ``INFO memory`` (``CONFIG GET`` is often disabled on managed Redis).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import RedisCluster

from jobqueue.protocol import AnyRedis

__all__ = ["eviction_policy", "eviction_problem"]

SAFE_POLICY = "noeviction"


async def eviction_policy(redis: AnyRedis) -> str | None:
    """The server's maxmemory-policy (the first one that is not safe, for a cluster), or None
    when the server does not say."""
    info: Any
    if isinstance(redis, RedisCluster):  # every node: a replica may be promoted any time
        info = await redis.info("memory", target_nodes=RedisCluster.ALL_NODES)
    else:
        info = await redis.info("memory")
    sections = (
        list(info.values()) if info and isinstance(next(iter(info.values())), dict) else [info]
    )
    policies = [str(s.get("maxmemory_policy")) for s in sections if s.get("maxmemory_policy")]
    unsafe = [p for p in policies if p != SAFE_POLICY]
    return unsafe[0] if unsafe else (policies[0] if policies else None)


def eviction_problem(policy: str | None) -> str | None:
    """A one-line explanation when ``policy`` would let Redis delete job records."""
    if policy is None or policy == SAFE_POLICY:
        return None
    return (
        f"Redis maxmemory-policy is {policy!r}: under memory pressure it deletes keys, and job "
        f"records and indexes would vanish; set maxmemory-policy {SAFE_POLICY} (Redis then "
        "refuses new writes when full and nothing is lost)"
    )
