"""Inline fallback: run a job in this process when Redis cannot be reached (opt-in).

Used by clients created with ``inline_fallback=True``: the handler registered for the job's
name runs right away (with the job's attempts, backoff and timeout), and the finished
``Job`` record is kept in the client's memory only.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from datetime import UTC, datetime
from typing import Any

from jobqueue.models import Job, JobSpec, JobState

__all__ = ["run_inline"]

log = logging.getLogger("jobqueue.inline")


async def run_inline(queue: str, job_id: str, spec: JobSpec) -> Job:
    """Run ``spec`` in-process through the handler registry; never raises for handler errors."""
    # Imported lazily: the registry and context belong to the worker runtime.
    from jobqueue.registry import DEFAULT_REGISTRY, HandlerNotFound
    from jobqueue.runtime.context import JobContext, SyncJobContext

    created = datetime.now(UTC)
    progress: dict[str, Any] = {"percent": 0.0, "message": None}

    async def report(percent: float, message: str | None) -> None:
        progress["percent"], progress["message"] = percent, message

    def record(state: JobState, attempts: int, result: Any = None, error: str | None = None) -> Job:
        return Job(
            id=job_id,
            queue=queue,
            name=spec.name,
            state=state,
            priority=spec.priority,
            payload=spec.payload,
            attempts=attempts,
            max_attempts=spec.attempts,
            backoff=spec.backoff,
            progress=100.0 if state is JobState.COMPLETED else progress["percent"],
            progress_message=progress["message"],
            result=result,
            error=error,
            created_at=created,
            started_at=created,
            finished_at=datetime.now(UTC),
            dedup_key=spec.dedup_key,
            timeout=spec.timeout,
        )

    try:
        handler = DEFAULT_REGISTRY.get(spec.name)
    except HandlerNotFound as exc:
        return record(JobState.FAILED, 0, error=str(exc))
    if spec.delay:
        await asyncio.sleep(spec.delay)
    error = ""
    loop = asyncio.get_running_loop()
    for attempt in range(1, spec.attempts + 1):
        common: dict[str, Any] = dict(
            job_id=job_id,
            queue=queue,
            name=spec.name,
            attempt=attempt,
            max_attempts=spec.attempts,
            reporter=report,
        )
        try:
            if handler.is_async:
                outcome = handler.fn(JobContext(**common), spec.payload)
                result = await asyncio.wait_for(outcome, spec.timeout)
            else:
                ctx = SyncJobContext(loop=loop, **common)
                call = asyncio.to_thread(handler.fn, ctx, spec.payload)
                result = await asyncio.wait_for(call, spec.timeout)
                if inspect.isawaitable(result):
                    result = await result
            return record(JobState.COMPLETED, attempt, result=result)
        except TimeoutError:
            error = f"timed out after {spec.timeout} s"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        log.warning("inline job %s (%s) attempt %d failed: %s", job_id, spec.name, attempt, error)
        if attempt < spec.attempts:
            await asyncio.sleep(spec.backoff_policy.delay(attempt))
    return record(JobState.FAILED, spec.attempts, error=error)
