"""The adapter a JobQueue's spec.source names, on a client of the shared pools."""

from __future__ import annotations

import functools

import redis.asyncio as aioredis
from jobqueue.endpoints import Topology, parse_redis_url

from jobqueue_operator import spec
from jobqueue_operator.sources.base import QueueSource, SourceUnavailable
from jobqueue_operator.sources.bullmq import BullMQSource
from jobqueue_operator.sources.celery import CelerySource
from jobqueue_operator.sources.jobqueue import JobQueueSource, RedisPools
from jobqueue_operator.sources.redislist import ListSource
from jobqueue_operator.sources.rq import DEFAULT_FAILURE_TTL, DEFAULT_RESULT_TTL, RQSource
from jobqueue_operator.sources.stream import StreamSource

Kind = spec.SourceKind


def open_source(
    pools: RedisPools,
    url: str,
    password: str | None,
    source: spec.SourceSpec,
    queue: str,
    *,
    window_seconds: int,
    worker_prefix: str | None = None,
) -> QueueSource:
    """The adapter of ``source`` (``queue``: spec.queue or the name, for kind JobQueue);
    ``worker_prefix`` is how the names of this JobQueue's pods start (Celery heartbeats from
    other workers on the same broker are not counted)."""
    if source.kind == Kind.JOBQUEUE:
        return JobQueueSource(pools, url, queue, password=password, window_seconds=window_seconds)
    if parse_redis_url(url).topology is Topology.CLUSTER:
        # The CRD refuses this; a JobQueue stored before that rule still gets a clear reason.
        raise SourceUnavailable(
            f"spec.source.kind {source.kind.value} is read on one Redis server or through "
            "Sentinel, not on Redis Cluster"
        )
    client = pools.acquire(url, password)
    assert isinstance(client, aioredis.Redis)  # a cluster URL was refused above
    release = functools.partial(pools.release, url, password)
    names = source.names(queue)
    if source.kind == Kind.BULLMQ:
        return BullMQSource(
            client, release, names, prefix=source.prefix or "bull", window_seconds=window_seconds
        )
    if source.kind == Kind.CELERY:
        return CelerySource(
            client,
            release,
            names,
            prefix=source.prefix or "",
            worker_prefix=worker_prefix,
            window_seconds=window_seconds,
        )
    if source.kind == Kind.RQ:
        return RQSource(
            client,
            release,
            names,
            window_seconds=window_seconds,
            result_ttl=source.result_ttl_seconds or DEFAULT_RESULT_TTL,
            failure_ttl=source.failure_ttl_seconds or DEFAULT_FAILURE_TTL,
        )
    if source.kind == Kind.LIST:
        return ListSource(client, release, names, in_flight_keys=source.in_flight_keys or ())
    assert source.consumer_group is not None  # the CRD requires it for kind Stream
    return StreamSource(client, release, names, group=source.consumer_group)
