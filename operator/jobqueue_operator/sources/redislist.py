"""Adapter for plain Redis lists (anything that LPUSHes work for a worker to pop), read-only.

Waiting is the length of the lists. A list item is opaque, so there is no age; what is being
worked on is seen only where the workers keep it in lists of their own (the reliable-queue
pattern: LMOVE from the queue to a processing list, LREM when done), named in
spec.source.inFlightKeys. Without them the count may fall while workers are busy: give them
a termination grace period of at least the longest job.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from jobqueue_operator.scaling import QueueMetrics, Signal
from jobqueue_operator.sources.base import Observation
from jobqueue_operator.sources.foreign import Clock, ForeignSource, Release, as_int


class ListSource(ForeignSource):
    """Reads plain lists: LLEN of the queue lists and of the in-flight lists."""

    signals = frozenset({Signal.WAITING, Signal.IN_FLIGHT})

    def __init__(
        self,
        client: aioredis.Redis,
        release: Release,
        keys: Sequence[str],
        *,
        in_flight_keys: Sequence[str] = (),
        clock: Clock | None = None,
    ) -> None:
        super().__init__(client, release, **({"clock": clock} if clock else {}))
        self.keys, self.in_flight_keys = list(keys), list(in_flight_keys)
        if not self.in_flight_keys:
            self.signals = frozenset({Signal.WAITING})

    async def _read(self, now: float) -> Observation:
        pipe = self._client.pipeline(transaction=False)
        for key in (*self.keys, *self.in_flight_keys):
            pipe.llen(key)
        lengths = [as_int(n) for n in await pipe.execute()]
        metrics = QueueMetrics(
            queued=sum(lengths[: len(self.keys)]), active=sum(lengths[len(self.keys) :])
        )
        return Observation(metrics, (), now, observed=self.signals)
