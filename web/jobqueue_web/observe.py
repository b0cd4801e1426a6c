"""The server's own view of every queue over time: the statistics of all queues read in one
round trip every ``interval`` seconds (and the JobQueues, when Kubernetes is on), kept for
``history_seconds`` for the sparklines, and handed to every live view at once.

However many browsers watch, Redis sees one reader. The history starts when the server
starts (it is not stored anywhere); each server replica keeps its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

from jobqueue.client import list_queues
from jobqueue.models import QueueStats
from jobqueue.protocol import AnyRedis
from jobqueue.stats import StatsReader, read_many

from jobqueue_web.kube import ScalingWatch
from jobqueue_web.schemas import Overview, QueueSample

__all__ = ["MAX_OBSERVED_QUEUES", "Observer", "sample_of"]

log = logging.getLogger("jobqueue_web.observe")

#: Queues sampled per tick (the first ones by name); the API reads any queue on demand.
MAX_OBSERVED_QUEUES = 200
#: Samples one overview carries in all (it goes to every live view at every tick): with many
#: queues, each gets fewer points.
OVERVIEW_POINTS_BUDGET = 12_000


def sample_of(stats: QueueStats) -> QueueSample:
    return QueueSample(
        at=stats.taken_at,
        queued=stats.queued,
        active=stats.active,
        delayed=stats.delayed,
        backlog=stats.queued + stats.active + stats.delayed_due,
        oldest_wait_seconds=round(stats.oldest_queued_age_seconds, 3),
        failure_ratio=round(stats.failure_ratio, 4),
        completed_1m=stats.completed_1m,
        failed_1m=stats.failed_1m,
        workers=len(stats.workers),
    )


class Observer:
    def __init__(
        self,
        redis: AnyRedis,
        *,
        interval: float = 2.0,
        history_seconds: float = 3600.0,
        scaling: ScalingWatch | None = None,
    ) -> None:
        self.redis = redis
        self.interval = interval
        self.history_seconds = history_seconds
        self.scaling = scaling
        self.latest: dict[str, QueueStats] = {}
        self.history: dict[str, deque[QueueSample]] = {}
        self.redis_error: str | None = None
        self.version = 0
        self._changed = asyncio.Condition()
        self._readers: dict[str, StatsReader] = {}

    async def _sample_queues(self) -> None:
        names = (await list_queues(self.redis))[:MAX_OBSERVED_QUEUES]
        readers = [self._readers.get(n) or StatsReader(self.redis, n) for n in names]
        self._readers = {r.queue: r for r in readers}
        results = await read_many(readers) if readers else []
        latest: dict[str, QueueStats] = {}
        for reader, result in zip(readers, results, strict=True):
            if isinstance(result, Exception):
                log.warning("stats of %s failed: %s", reader.queue, result)
                continue
            latest[reader.queue] = result
            points = self.history.setdefault(reader.queue, deque())
            points.append(sample_of(result))
            horizon = result.taken_at - self.history_seconds
            while points and points[0].at < horizon:
                points.popleft()
        for gone in set(self.history) - set(latest):
            del self.history[gone]
        self.latest = latest

    async def tick(self) -> None:
        """One sample of every queue (and the JobQueues); wakes the live views."""
        tasks = [self._sample_queues()]
        if self.scaling is not None:
            tasks.append(self.scaling.poll())
        results = await asyncio.gather(*tasks, return_exceptions=True)
        error = results[0]
        self.redis_error = None if error is None else " ".join(str(error).split())[:300]
        if error is not None:
            log.warning("sampling queues failed: %s", self.redis_error)
        async with self._changed:
            self.version += 1
            self._changed.notify_all()

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            await self.tick()
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def wait_newer(self, seen: int, timeout: float) -> int:  # noqa: ASYNC109
        """The version after ``seen``, waiting up to ``timeout`` s for one."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._changed.wait_for(lambda: self.version != seen)
            return self.version

    def overview(self, points: int = 90) -> Overview:
        scaling = self.scaling
        foreign = sum(v.foreign for v in scaling.views()) if scaling is not None else 0
        series = len(self.history) + foreign
        points = max(2, min(points, OVERVIEW_POINTS_BUDGET // max(1, series)))
        kube_state = "off" if scaling is None else ("error" if scaling.error else "ok")
        return Overview(
            at=time.time(),
            queues=[self.latest[name] for name in sorted(self.latest)],
            history={name: list(h)[-points:] for name, h in sorted(self.history.items())},
            jobqueues=scaling.views() if scaling is not None else [],
            foreign_history=scaling.foreign_history(points) if scaling is not None else {},
            kubernetes=kube_state,
            kubernetes_error=scaling.error if scaling is not None else None,
            redis_error=self.redis_error,
        )
