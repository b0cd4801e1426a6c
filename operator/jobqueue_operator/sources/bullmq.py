"""Adapter for BullMQ (v5 and v6; Flowise's queue mode), read-only.

Keys are ``<prefix>:<queue>:<suffix>`` (bullmq src/classes/queue-keys.ts). Per queue:

- waiting: the ``wait`` list (less a v5 marker entry ``0:<delay>``) + the ``prioritized``
  set + the ``paused`` list (v5 moves wait there while paused) + ``delayed`` jobs already
  due: only a BullMQ worker promotes them, so with no worker running they stay in
  ``delayed`` (scored due_ms * 0x1000 + counter) and a scaler reading ``wait`` alone never
  starts one;
- in flight: the ``active`` list;
- oldest wait: the next job of each list (its hash's ``timestamp`` + ``delay``) and the
  earliest overdue delayed job;
- outcomes: ``completed`` and ``failed`` events of the ``events`` stream over the window,
  and ``waiting`` ones from ``failed`` (an attempt retried at once); the finished sets may be
  emptied by removeOnComplete/removeOnFail: Flowise removes failed jobs. An attempt retried
  after a backoff is not counted (its ``delayed`` event is a plain delay's too);
- workers: connections named ``<prefix>:<base64(queue)>`` (CLIENT LIST; skipped when the
  ACL refuses it). BullMQ ties no job to a pod, so scale-down cannot spare busy pods: the
  worker must close on SIGTERM (Flowise does) within the grace period.

BullMQ's own counting script (getCounts) pops the v5 marker: never used here.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from jobqueue_operator.scaling import QueueMetrics, Signal
from jobqueue_operator.sources.base import Observation
from jobqueue_operator.sources.foreign import Clock, ForeignSource, Release, as_int, refused

DELAY_SHIFT = 0x1000  # delayed score = due_ms * 0x1000 + a counter
# Events read per queue and window: the stream is capped (Flowise: 10,000), and each job
# leaves several events (added, waiting, active, completed).
EVENTS_CAP = 20_000
_PER_QUEUE = 12  # replies per queue in the first pipeline


def is_marker(entry: str | None) -> bool:
    """A v5 marker in the wait list ("0:<delay>"), not a job id."""
    return entry is not None and (entry == "0" or entry.startswith("0:"))


class BullMQSource(ForeignSource):
    """Reads BullMQ queues (their figures added up)."""

    signals = frozenset(
        {
            Signal.WAITING,
            Signal.IN_FLIGHT,
            Signal.DELAYED,
            Signal.OLDEST_WAIT,
            Signal.OUTCOMES,
            Signal.WORKERS,
        }
    )

    def __init__(
        self,
        client: aioredis.Redis,
        release: Release,
        queues: Sequence[str],
        *,
        prefix: str = "bull",
        window_seconds: int = 60,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(client, release, **({"clock": clock} if clock else {}))
        self.queues, self.prefix, self.window = list(queues), prefix or "bull", window_seconds

    def key(self, queue: str, suffix: str) -> str:
        return f"{self.prefix}:{queue}:{suffix}"

    def client_name(self, queue: str) -> str:
        """The CLIENT SETNAME of BullMQ's connections for ``queue``."""
        return f"{self.prefix}:{base64.b64encode(queue.encode()).decode()}"

    async def _read(self, now: float) -> Observation:
        now_ms = int(now * 1000)
        due_max = (now_ms + 1) * DELAY_SHIFT - 1
        pipe = self._client.pipeline(transaction=False)
        for q in self.queues:
            k = self.key
            pipe.llen(k(q, "wait"))
            pipe.lindex(k(q, "wait"), 0)
            pipe.lrange(k(q, "wait"), -2, -1)  # the next job, and what is behind a marker
            pipe.zcard(k(q, "prioritized"))
            pipe.zrange(k(q, "prioritized"), 0, 0)
            pipe.llen(k(q, "paused"))
            pipe.lindex(k(q, "paused"), -1)
            pipe.llen(k(q, "active"))
            pipe.zcard(k(q, "delayed"))
            pipe.zcount(k(q, "delayed"), 0, due_max)
            pipe.zrange(k(q, "delayed"), 0, 0, withscores=True)
            pipe.xrange(k(q, "events"), min=str(now_ms - self.window * 1000), count=EVENTS_CAP)
        replies = await pipe.execute()
        queued = active = delayed = due = succeeded = failed = 0
        next_jobs: list[tuple[str, str]] = []  # (queue, job id) whose age is read next
        overdue_since: list[float] = []
        for i, q in enumerate(self.queues):
            (wait_len, wait_head, wait_tail, prio, prio_first, paused_len, paused_tail,
             active_len, delayed_len, due_len, delayed_first, events) = replies[
                i * _PER_QUEUE : (i + 1) * _PER_QUEUE]  # fmt: skip
            markers = int(is_marker(wait_head)) + int(
                bool(wait_tail) and is_marker(wait_tail[-1]) and as_int(wait_len) > 1
            )
            queued += max(as_int(wait_len) - markers, 0) + as_int(prio) + as_int(paused_len)
            active += as_int(active_len)
            delayed += as_int(delayed_len)
            due += as_int(due_len)
            tail = [e for e in (wait_tail or []) if not is_marker(e)]
            for job in (tail[-1] if tail else None, *(prio_first or []), paused_tail):
                if job:
                    next_jobs.append((q, job))
            if as_int(due_len) and delayed_first:
                overdue_since.append(float(delayed_first[0][1]) / DELAY_SHIFT / 1000)
            for _, fields in events or []:
                event = fields.get("event")
                if event == "completed":
                    succeeded += 1
                elif event == "failed" or (event == "waiting" and fields.get("prev") == "failed"):
                    # A last attempt's failure ("failed"; "retries-exhausted" follows it: not
                    # counted twice), or one retried at once. One retried after a backoff
                    # shows only as "delayed", which a plain moveToDelayed writes too.
                    failed += 1
        oldest = max((now - t for t in overdue_since), default=0.0)
        if next_jobs:
            pipe = self._client.pipeline(transaction=False)
            for q, job in next_jobs:
                pipe.hmget(self.key(q, job), "timestamp", "delay")
            for stamp, delay in await pipe.execute():
                if stamp is not None:
                    since = (float(stamp) + float(delay or 0)) / 1000
                    oldest = max(oldest, now - since)
        observed, notes, workers = set(self.signals), [], None
        try:
            workers = self._count_workers(await self._client.client_list())
        except Exception as exc:
            if not refused(exc):
                raise
            observed.discard(Signal.WORKERS)
            notes.append(f"CLIENT LIST refused ({exc}): workers not counted")
        metrics = QueueMetrics(
            queued=queued,
            active=active,
            delayed=delayed,
            delayed_due=due,  # in the backlog: only a running worker promotes them
            oldest_wait_seconds=max(oldest, 0.0),
            attempts_succeeded=succeeded,
            attempts_failed=failed,
        )
        return Observation(
            metrics, (), now, observed=frozenset(observed), worker_count=workers,
            notes=tuple(notes),
        )  # fmt: skip

    def _count_workers(self, clients: list[dict[str, Any]]) -> int:
        """Worker connections of the queues (a Worker names its blocking connection
        ``<prefix>:<base64(queue)>``, plus ``:w:<name>`` when it has a name)."""
        names = {self.client_name(q) for q in self.queues}
        count = 0
        for entry in clients:
            name = str(entry.get("name") or "")
            base = name.split(":w:", 1)[0]
            if base in names:
                count += 1
        return count
