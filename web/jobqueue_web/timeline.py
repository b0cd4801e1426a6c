"""A job's timeline: the times its record keeps, and its entries in the queue's event stream.

The stream (``events``, bounded by the queue's ``events_maxlen``) has no index per job, but
its ids are the Redis server's milliseconds: reading from the job's creation onwards, at
most ``scan`` entries, finds its events without scanning the stream. On a busy queue the
oldest of them may already be trimmed, or lie past the scan: the timeline then says it is
incomplete, and the record's own times (created, started, finished) fill in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jobqueue.models import Job
from jobqueue.protocol import QueueProtocol

from jobqueue_web.schemas import TimelineEntry

__all__ = ["DEFAULT_SCAN", "job_timeline"]

DEFAULT_SCAN = 2000


def _moment(stream_id: str) -> datetime:
    return datetime.fromtimestamp(int(stream_id.partition("-")[0]) / 1000.0, tz=UTC)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def job_timeline(
    protocol: QueueProtocol, job: Job, scan: int = DEFAULT_SCAN
) -> tuple[list[TimelineEntry], bool]:
    """(entries oldest first, complete?) for ``job``."""
    start = f"{_ms(job.created_at)}-0" if job.created_at else "-"
    pipe = protocol.redis.pipeline(transaction=False)
    pipe.xrange(protocol.keys.events, min=start, max="+", count=scan)
    pipe.xrange(protocol.keys.events, min="-", max="+", count=1)
    read: Any
    oldest: Any
    read, oldest = await pipe.execute()
    entries: list[TimelineEntry] = []
    for stream_id, fields in read:
        if fields.get("job") == job.id:
            entries.append(
                TimelineEntry(
                    at=_moment(stream_id),
                    event=str(fields.get("event", "?")),
                    data=fields.get("data"),
                    source="events",
                )
            )
    trimmed = job.created_at is None or (
        bool(oldest) and int(oldest[0][0].partition("-")[0]) > _ms(job.created_at)
    )
    complete = not trimmed and len(read) < scan
    seen = {e.event for e in entries}
    if job.created_at is not None:
        entries.append(TimelineEntry(at=job.created_at, event="created", source="record"))
    if job.started_at is not None and "active" not in seen:
        entries.append(TimelineEntry(at=job.started_at, event="active", source="record"))
    if job.finished_at is not None and job.state.value not in seen:
        entries.append(TimelineEntry(at=job.finished_at, event=job.state.value, source="record"))
    # created first among equals: it is the record's moment of the submit itself
    entries.sort(key=lambda e: (e.at, e.event != "created"))
    return entries, complete
