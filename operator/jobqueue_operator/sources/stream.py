"""Adapter for a Redis stream read by a consumer group, read-only.

XINFO GROUPS gives the group's ``lag`` (entries not yet delivered to any consumer:
waiting; Redis 7.0+, else counted from the last delivered id) and ``pending`` (delivered,
not acknowledged: in flight); the next undelivered entry's id is its time (ms), so the
oldest wait is exact. XINFO CONSUMERS gives each consumer's pending entries: name the
consumers after their pods and scale-down spares the busy ones. A consumer counts as live
while it has been seen within LIVE_SECONDS (Redis keeps consumers until XGROUP
DELCONSUMER). Outcomes are not in a stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from jobqueue_operator.scaling import QueueMetrics, Signal
from jobqueue_operator.sources.base import Observation, WorkerLoad
from jobqueue_operator.sources.foreign import Clock, ForeignSource, Release, as_int

LIVE_SECONDS = 60.0
COUNT_CAP = 100_000  # entries counted one by one when Redis gives no lag


def id_ms(entry_id: str | None) -> int | None:
    """The time part of a stream id ('1700000000000-0' -> 1700000000000)."""
    if not entry_id:
        return None
    head = str(entry_id).split("-", 1)[0]
    return int(head) if head.isdigit() else None


class StreamSource(ForeignSource):
    """Reads streams through one consumer group (their figures added up)."""

    signals = frozenset(
        {
            Signal.WAITING,
            Signal.IN_FLIGHT,
            Signal.OLDEST_WAIT,
            Signal.WORKERS,
            Signal.WORKER_LOADS,
        }
    )

    def __init__(
        self,
        client: aioredis.Redis,
        release: Release,
        streams: Sequence[str],
        *,
        group: str,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(client, release, **({"clock": clock} if clock else {}))
        self.streams, self.group = list(streams), group

    async def _read(self, now: float) -> Observation:
        queued = active = 0
        oldest = 0.0
        loads: dict[str, int] = {}
        notes: list[str] = []
        for stream in self.streams:
            group = await self._group(stream, notes)
            if group is None:
                pipe = self._client.pipeline(transaction=False)
                pipe.xlen(stream)
                pipe.xrange(stream, count=1)
                length, first_entry = await pipe.execute()
                queued += as_int(length)
                if first_entry:
                    oldest = max(oldest, now - (id_ms(first_entry[0][0]) or now * 1000) / 1000)
                continue
            last = str(group.get("last-delivered-id") or "0-0")
            lag = group.get("lag")
            pipe = self._client.pipeline(transaction=False)
            pipe.xrange(stream, min=f"({last}", count=1)
            pipe.xinfo_consumers(stream, self.group)
            if lag is None:  # unknown after deletions (or before Redis 7)
                pipe.xrange(stream, min=f"({last}", count=COUNT_CAP)
            replies = await pipe.execute()
            queued += as_int(lag) if lag is not None else len(replies[2])
            active += as_int(group.get("pending"))
            first = id_ms(replies[0][0][0]) if replies[0] else None
            if first is not None:
                oldest = max(oldest, now - first / 1000)
            for consumer in replies[1]:
                if as_int(consumer.get("idle")) / 1000 <= LIVE_SECONDS:
                    name = str(consumer.get("name"))
                    loads[name] = loads.get(name, 0) + as_int(consumer.get("pending"))
        metrics = QueueMetrics(queued=queued, active=active, oldest_wait_seconds=oldest)
        workers = tuple(WorkerLoad(n, c) for n, c in sorted(loads.items()))
        return Observation(metrics, workers, now, observed=self.signals, notes=tuple(notes))

    async def _group(self, stream: str, notes: list[str]) -> dict[str, Any] | None:
        """The group's XINFO entry; None when the stream or the group does not exist yet
        (the workers make the group when they start: until then every entry waits)."""
        try:
            groups = await self._client.xinfo_groups(stream)
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                return None
            raise
        for group in groups:
            if str(group.get("name")) == self.group:
                return dict(group)
        notes.append(f"stream {stream!r} has no consumer group {self.group!r} yet")
        return None
