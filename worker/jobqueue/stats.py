"""Cheap queue statistics for the operator and ``jobq stats``: one script call per read,
and one round trip for many queues of one Redis (``read_many``).

Counts per state come from the state indexes (finished ones without records past their
lifetime), the oldest queued age from the ``enqueued`` index (a due delayed job counts from
its due time), attempt outcomes from 5 s buckets kept for an hour (a window covers at least
its last ``window_seconds``: every bucket that overlaps them, the current partial one
included; lapsed leases are counted apart from failures), and workers from the heartbeat
registry.

``WAKEUPS_CHANNEL`` is re-exported for watchers of queue activity (the operator): a submit
that makes an idle queue busy publishes the queue's name there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from jobqueue.models import QueueStats, WorkerInfo
from jobqueue.protocol import AnyRedis, QueueProtocol, StatsSnapshot, stats_of_many
from jobqueue.protocol.keys import WAKEUPS_CHANNEL

__all__ = [
    "MAX_WINDOW_SECONDS",
    "WAKEUPS_CHANNEL",
    "QueueStats",
    "StatsReader",
    "WorkerInfo",
    "read_many",
    "read_stats",
    "stats_from_snapshot",
]

MAX_WINDOW_SECONDS = 3600


def check_window(window_seconds: int) -> int:
    if isinstance(window_seconds, bool) or not isinstance(window_seconds, int):
        raise ValueError(f"window_seconds must be an integer, got {window_seconds!r}")
    if not 1 <= window_seconds <= MAX_WINDOW_SECONDS:
        raise ValueError(f"window_seconds must be in 1..{MAX_WINDOW_SECONDS}, got {window_seconds}")
    return window_seconds


def stats_from_snapshot(queue: str, snap: StatsSnapshot, window_seconds: int) -> QueueStats:
    """Turn the raw numbers of stats.lua into the contract's model (pure)."""
    now = snap.now_ms / 1000.0
    oldest_age = 0.0
    if snap.oldest_ready_ms is not None:
        oldest_age = max(0.0, (snap.now_ms - snap.oldest_ready_ms) / 1000.0)
    samples = snap.window_succeeded + snap.window_failed
    workers = [WorkerInfo.model_validate_json(raw) for raw in snap.workers]
    workers.sort(key=lambda w: (w.name, w.id))
    return QueueStats(
        queue=queue,
        queued=snap.queued,
        active=snap.active,
        delayed=snap.delayed,
        delayed_due=snap.delayed_due,
        completed=snap.completed,
        failed=snap.failed,
        cancelled=snap.cancelled,
        oldest_queued_age_seconds=oldest_age,
        window_seconds=window_seconds,
        attempts_succeeded=snap.window_succeeded,
        attempts_failed=snap.window_failed,
        failure_ratio=snap.window_failed / samples if samples else 0.0,
        completed_1m=snap.succeeded_1m,
        failed_1m=snap.failed_1m,
        completed_5m=snap.succeeded_5m,
        failed_5m=snap.failed_5m,
        lapsed_1m=snap.lapsed_1m,
        lapsed_5m=snap.lapsed_5m,
        schedules=snap.schedules,
        next_schedule_in_seconds=None
        if snap.next_schedule_due_ms is None
        else max(0.0, (snap.next_schedule_due_ms - snap.now_ms) / 1000.0),
        workers=workers,
        taken_at=now,
    )


async def read_stats(
    redis: AnyRedis,
    queue: str,
    *,
    window_seconds: int = 60,
    clock: Callable[[], float] | None = None,
) -> QueueStats:
    """Statistics of ``queue`` (one round trip). ``redis`` needs decode_responses=True.
    ``clock`` (tests only) replaces the Redis server's TIME as "now"."""
    return await StatsReader(redis, queue, window_seconds=window_seconds, clock=clock).read()


class StatsReader:
    """Reads one queue's statistics again and again (what a poll loop does): the protocol
    object is built once, not per read as ``read_stats`` does."""

    def __init__(
        self,
        redis: AnyRedis,
        queue: str,
        *,
        window_seconds: int = 60,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.queue = queue
        self.window_seconds = check_window(window_seconds)
        self._protocol = QueueProtocol(redis, queue, clock=clock)

    async def read(self) -> QueueStats:
        """The statistics now (one round trip)."""
        snap = await self._protocol.stats(self.window_seconds)
        return stats_from_snapshot(self.queue, snap, self.window_seconds)


async def read_many(readers: Sequence[StatsReader]) -> list[QueueStats | Exception]:
    """The statistics of many queues in one round trip (a pipeline); every reader must use
    the same Redis client. A queue whose read fails gets its error in its place; a
    connection error raises for all."""
    snaps = await stats_of_many([r._protocol for r in readers], [r.window_seconds for r in readers])
    return [
        s if isinstance(s, Exception) else stats_from_snapshot(r.queue, s, r.window_seconds)
        for r, s in zip(readers, snaps, strict=True)
    ]
