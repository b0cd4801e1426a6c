"""Polling helpers for worker tests (imported by name; no fixtures here)."""

from __future__ import annotations

from jobqueue.client import AsyncQueue
from jobqueue.models import Job, JobState
from waits import wait_until

__all__ = ["wait_for_state", "wait_until"]


async def wait_for_state(
    q: AsyncQueue, job_id: str, state: JobState, within: float = 20.0, every: float = 0.02
) -> Job:
    async def reached() -> bool:
        return (await q.get(job_id)).state is state

    await wait_until(reached, within, every)
    return await q.get(job_id)
