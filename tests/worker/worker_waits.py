"""Polling helpers for worker tests (imported by name; no fixtures here)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from jobqueue.client import AsyncQueue
from jobqueue.models import Job, JobState


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], within: float = 20.0, every: float = 0.02
) -> None:
    """Poll ``predicate`` until true; fail the test after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(every)


async def wait_for_state(
    q: AsyncQueue, job_id: str, state: JobState, within: float = 20.0, every: float = 0.02
) -> Job:
    async def reached() -> bool:
        return (await q.get(job_id)).state is state

    await wait_until(reached, within, every)
    return await q.get(job_id)
