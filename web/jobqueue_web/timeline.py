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
from jobqueue.protocol import QueueProtocol, event_job_ids

from jobqueue_web.schemas import TimelineEntry

__all__ = ["DEFAULT_SCAN", "job_timeline"]

DEFAULT_SCAN = 2000
#: A job's first event, written by the submit (its record's created_at is from the same call).
SUBMIT_EVENTS = ("queued", "delayed")
SUBMIT_EVENT_WITHIN_MS = 1000


def _moment(stream_id: str) -> datetime:
    return datetime.fromtimestamp(int(stream_id.partition("-")[0]) / 1000.0, tz=UTC)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _holds_the_start(job: Job, entries: list[TimelineEntry], oldest: Any) -> bool:
    """Whether the stream still holds the job's first event. Either the stream reaches back
    to before the job was created (an entry from an earlier millisecond), or the job's first
    entry read is its submit's (queued or delayed, within a second of its creation). The
    submit's entry may carry a later millisecond than the record's created_at (both come
    from the server's clock, read at different moments), so an oldest entry newer than
    created_at alone does not mean anything was trimmed."""
    if job.created_at is None:
        return False
    created = _ms(job.created_at)
    if not oldest or int(oldest[0][0].partition("-")[0]) < created:
        return True
    first = entries[0] if entries else None
    return (
        first is not None
        and first.event in SUBMIT_EVENTS
        and _ms(first.at) - created < SUBMIT_EVENT_WITHIN_MS
    )


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
        if job.id in event_job_ids(fields):
            entries.append(
                TimelineEntry(
                    at=_moment(stream_id),
                    event=str(fields.get("event", "?")),
                    data=fields.get("data"),
                    source="events",
                )
            )
    complete = _holds_the_start(job, entries, oldest) and len(read) < scan
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
