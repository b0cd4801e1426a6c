"""Adapter for RQ, read-only.

Per queue (rq/queue.py, rq/registry.py, rq/worker_registration.py):

- waiting: the list ``rq:queue:<q>`` (RPUSH in, BLPOP out: the next job is the head; its
  hash ``rq:job:<id>`` has ``enqueued_at``) plus due entries of the scheduled registry
  ``rq:scheduled:<q>`` (scored by their time: only RQ's scheduler, which runs inside a
  worker started with ``--with-scheduler``, moves them);
- in flight: the started registry ``rq:wip:<q>``, scored by when its entry expires (entries
  of a crashed worker expire: ZCOUNT now..+inf) plus the ``rq:queue:<q>:intermediate`` list (a
  job between BLMOVE and the registry);
- outcomes over the window: the finished and failed registries, scored by the time their
  entry expires (finish time + result_ttl, + failure_ttl): entries whose score lies within
  the window below now + ttl finished within it. A job retried later is not in either;
- workers: the set ``rq:workers:<q>`` of worker keys, each ``rq:worker:<name>`` a hash with
  ``state`` (busy or idle) that expires with the worker: a busy worker holds one job. Start
  workers with ``--name $(POD_NAME)`` so their loads name their pods.

RQ's own counting calls (registry.count, get_job_count) clean expired entries up: they
write. Only ZCOUNT, LLEN, LINDEX, SMEMBERS, HMGET and HGET are sent here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import redis.asyncio as aioredis

from jobqueue_operator.scaling import QueueMetrics, Signal
from jobqueue_operator.sources.base import Observation, WorkerLoad
from jobqueue_operator.sources.foreign import Clock, ForeignSource, Release, as_int

DEFAULT_RESULT_TTL = 500
DEFAULT_FAILURE_TTL = 31_536_000
_PER_QUEUE = 9


def parse_time(text: str | None) -> float | None:
    """RQ's timestamps ('2026-12-01T10:00:00.123456Z', naive UTC) as unix seconds."""
    if not text:
        return None
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        from datetime import UTC

        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


class RQSource(ForeignSource):
    """Reads RQ queues (their figures added up)."""

    signals = frozenset(
        {
            Signal.WAITING,
            Signal.IN_FLIGHT,
            Signal.DELAYED,
            Signal.OLDEST_WAIT,
            Signal.OUTCOMES,
            Signal.WORKERS,
            Signal.WORKER_LOADS,
        }
    )

    def __init__(
        self,
        client: aioredis.Redis,
        release: Release,
        queues: Sequence[str],
        *,
        window_seconds: int = 60,
        result_ttl: int = DEFAULT_RESULT_TTL,
        failure_ttl: int = DEFAULT_FAILURE_TTL,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(client, release, **({"clock": clock} if clock else {}))
        self.queues, self.window = list(queues), window_seconds
        self.result_ttl, self.failure_ttl = result_ttl, failure_ttl

    async def _read(self, now: float) -> Observation:
        pipe = self._client.pipeline(transaction=False)
        for q in self.queues:
            pipe.llen(f"rq:queue:{q}")
            pipe.lindex(f"rq:queue:{q}", 0)
            pipe.zcount(f"rq:wip:{q}", now, "+inf")
            pipe.llen(f"rq:queue:{q}:intermediate")
            pipe.zcard(f"rq:scheduled:{q}")
            pipe.zcount(f"rq:scheduled:{q}", 0, now)
            pipe.zcount(f"rq:finished:{q}", *self._finished_within(now, self.result_ttl))
            pipe.zcount(f"rq:failed:{q}", *self._finished_within(now, self.failure_ttl))
            pipe.smembers(f"rq:workers:{q}")
        replies = await pipe.execute()
        queued = active = scheduled = due = succeeded = failed = 0
        heads: list[str] = []
        worker_keys: set[str] = set()
        for i in range(len(self.queues)):
            (length, head, wip, intermediate, sched, sched_due, done, dead,
             members) = replies[i * _PER_QUEUE : (i + 1) * _PER_QUEUE]  # fmt: skip
            queued += as_int(length)
            active += as_int(wip) + as_int(intermediate)
            scheduled += as_int(sched)
            due += as_int(sched_due)
            succeeded += as_int(done)
            failed += as_int(dead)
            if head:
                heads.append(head)
            worker_keys |= set(members or ())
        oldest = 0.0
        keys = sorted(worker_keys)
        pipe = self._client.pipeline(transaction=False)
        for job in heads:
            pipe.hget(f"rq:job:{job}", "enqueued_at")
        for key in keys:
            pipe.hmget(key, "state", "name")
        replies = await pipe.execute()
        for enqueued in replies[: len(heads)]:
            at = parse_time(enqueued)
            if at is not None:
                oldest = max(oldest, now - at)
        workers = []
        for key, (state, name) in zip(keys, replies[len(heads) :], strict=True):
            if state is None:  # the hash expired: a worker that died without deregistering
                continue
            workers.append(WorkerLoad(name or key.rsplit(":", 1)[-1], int(state == "busy")))
        metrics = QueueMetrics(
            queued=queued,
            active=active,
            delayed=scheduled,
            delayed_due=due,
            oldest_wait_seconds=oldest,
            attempts_succeeded=succeeded,
            attempts_failed=failed,
        )
        return Observation(metrics, tuple(workers), now, observed=self.signals)

    def _finished_within(self, now: float, ttl: int) -> tuple[float, float]:
        """The score range of registry entries made within the window (score = the time
        the entry was made + ttl)."""
        return now + ttl - self.window, now + ttl + 1
