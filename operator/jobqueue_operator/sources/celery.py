"""Adapter for Celery with the Redis broker (kombu's transport; Dify, Langflow), read-only.

What the broker keeps (kombu/transport/redis.py), keys behind the global_keyprefix:

- waiting: each queue's list ``<queue>`` plus its priority lists ``<queue>\\x06\\x16<n>``
  (n in 3, 6, 9: kombu's priority steps), added up as kombu's own size does; the next
  message is the tail (BRPOP). A message carries no enqueue time: its age is counted from
  when this adapter first saw it at the tail;
- prefetched: the ``unacked`` hash holds what workers took and have not acked: messages
  prefetched by a busy worker (waiting for a slot: counted as waiting, which a list-length
  scaler never sees: the list empties while every worker is busy), ETA tasks (counted as
  delayed) and the running ones where they are acked late: with task_acks_late, and under
  the gevent pool (Dify's) whatever the setting (seen with celery 5.6, kombu 5.7). As many
  as the heartbeats say run are taken off the held ones: exact there, and with prefork or
  threads (acked as they start) the running tasks are counted by the busy floor instead;
- running and live workers: only in the workers' heartbeats (celery_events.py), since a
  task is acked before it runs. The heartbeat's hostname (``celery@<pod>``) names the pod;
- outcomes: only from task events, which workers send with ``-E`` (Dify and Langflow run
  without): otherwise the failure gate is off.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from jobqueue_operator.scaling import QueueMetrics, Signal
from jobqueue_operator.sources.base import Observation, WorkerLoad
from jobqueue_operator.sources.celery_events import CeleryEvents
from jobqueue_operator.sources.foreign import Clock, ForeignSource, Release, as_int, own_client

PRIORITY_SEP = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)  # kombu's default priority_steps, 0 being the plain list
# The unacked hash is read whole only up to this many messages (each a task message of a
# few KiB); past it every unacked message counts as this JobQueue's and not delayed.
UNACKED_READ_MAX = 5_000
# The first read waits this long for heartbeats (sent every 2 s), so a restarted operator
# does not take busy workers for idle ones.
WARMUP_SECONDS = 2.5


def eta_of(message: dict[str, Any]) -> float | None:
    """A task message's ETA (unix seconds), None when it has none."""
    eta = (message.get("headers") or {}).get("eta")
    if not eta:
        return None
    try:
        return datetime.fromisoformat(str(eta).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def tag_of(raw: str | None) -> str | None:
    """The delivery tag of a queued message (what identifies it at the tail)."""
    if raw is None:
        return None
    try:
        message = json.loads(raw)
        tag = (message.get("properties") or {}).get("delivery_tag")
        return str(tag) if tag is not None else raw[:256]
    except (ValueError, AttributeError):
        return raw[:256]


class CelerySource(ForeignSource):
    """Reads Celery queues on a Redis broker (their figures added up)."""

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
        prefix: str = "",
        worker_prefix: str | None = None,
        window_seconds: int = 60,
        clock: Clock | None = None,
        events: CeleryEvents | None = None,
    ) -> None:
        super().__init__(client, release, **({"clock": clock} if clock else {}))
        self.queues, self.prefix = list(queues), prefix or ""
        self.worker_prefix, self.window = worker_prefix, window_seconds
        db = int(client.connection_pool.connection_kwargs.get("db") or 0)
        self.events = events or CeleryEvents(own_client(client), db)
        self._first_seen: dict[tuple[str, str], float] = {}
        self._started = time.monotonic()

    def lists(self) -> list[str]:
        """Every list holding this JobQueue's waiting messages."""
        out = []
        for q in self.queues:
            out.append(self.prefix + q)
            out.extend(f"{self.prefix}{q}{PRIORITY_SEP}{n}" for n in PRIORITY_STEPS)
        return out

    async def _read(self, now: float) -> Observation:
        self.events.start()
        wait = WARMUP_SECONDS - (time.monotonic() - self._started)
        if wait > 0 and not self.events.ready():
            await self.events.wait_ready(wait)
        lists = self.lists()
        pipe = self._client.pipeline(transaction=False)
        for key in lists:
            pipe.llen(key)
            pipe.lindex(key, -1)
        pipe.hlen(self.prefix + "unacked")
        replies = await pipe.execute()
        queued, tails = 0, {}
        for i, key in enumerate(lists):
            queued += as_int(replies[2 * i])
            tag = tag_of(replies[2 * i + 1])
            if tag is not None:
                tails[(key, tag)] = self._first_seen.get((key, tag), now)
        self._first_seen = tails
        oldest = max((now - t for t in tails.values()), default=0.0)
        held, delayed, notes = await self._unacked(as_int(replies[-1]), now)
        observed = set(self.signals)
        workers: tuple[WorkerLoad, ...] = ()
        active = 0
        if self.events.ready():
            beats = [b for b in self.events.live_workers() if self._ours(b.hostname)]
            active = sum(b.active for b in beats)
            workers = tuple(WorkerLoad(_pod_of(b.hostname), b.active) for b in beats)
        else:
            observed -= {Signal.IN_FLIGHT, Signal.WORKERS, Signal.WORKER_LOADS}
            notes.append("not subscribed to the workers' heartbeats yet")
        prefetched = max(held - active, 0)
        outcomes = self.events.outcomes(self.window)
        if outcomes is None:
            observed.discard(Signal.OUTCOMES)
        succeeded, failed = outcomes or (0, 0)
        metrics = QueueMetrics(
            queued=queued + prefetched,
            active=active,
            delayed=delayed,
            oldest_wait_seconds=oldest,
            attempts_succeeded=succeeded,
            attempts_failed=failed,
        )
        return Observation(metrics, workers, now, observed=frozenset(observed), notes=tuple(notes))

    async def _unacked(self, size: int, now: float) -> tuple[int, int, list[str]]:
        """(held by workers, ETA not yet due) among the unacked messages of our queues."""
        if size == 0:
            return 0, 0, []
        if size > UNACKED_READ_MAX:
            return size, 0, [f"{size} unacked messages: all counted as this queue's"]
        held = delayed = 0
        names = set(self.queues)
        for raw in await self._client.hvals(self.prefix + "unacked"):
            try:
                message, exchange, routing_key = json.loads(raw)
            except (ValueError, TypeError):
                continue
            if routing_key not in names and exchange not in names:
                continue
            eta = eta_of(message) if isinstance(message, dict) else None
            if eta is not None and eta > now:
                delayed += 1
            else:
                held += 1
        return held, delayed, []

    def _ours(self, hostname: str) -> bool:
        return self.worker_prefix is None or _pod_of(hostname).startswith(self.worker_prefix)

    async def close(self) -> None:
        await self.events.close()
        await super().close()


def _pod_of(hostname: str) -> str:
    """celery@pod-abc -> pod-abc (a worker's node name is its pod's host name)."""
    return hostname.split("@", 1)[-1]
