"""Handlers for worker-process tests (imported with ``--handlers jq_test_handlers``).

``test.whoami`` sleeps (seconds chosen per worker name, so one worker can be slow and the
next fast) and returns the name of the worker that ran it (with ``mark_start``, it and
``test.block_sync`` first set progress 1: the handler is running, not only leased);
``test.block_sync`` is a thread handler that sleeps without noticing cancellation;
``test.stubborn`` writes its process id to a file and then blocks, ignoring everything;
``test.report`` reports progress and returns what it saw of its context; ``test.permanent``
raises PermanentJobError; ``test.tally`` appends each run to a file (failover tests count
runs per job with it).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from jobqueue.registry import task
from jobqueue.runtime.context import JobContext, SyncJobContext
from jobqueue.runtime.failures import PermanentJobError


def _worker_name() -> str:
    return os.environ.get("JOBQUEUE_WORKER_NAME", "?")


def _seconds(payload: Any) -> float:
    payload = payload or {}
    per_worker = payload.get("sleep", {})
    return float(per_worker.get(_worker_name(), payload.get("default", 0.0)))


@task("test.whoami")
async def whoami(ctx: JobContext, payload: Any) -> dict[str, Any]:
    if (payload or {}).get("mark_start"):
        await ctx.progress(1, "started")  # tests wait for this: the handler runs
    await asyncio.sleep(_seconds(payload))
    return {"worker": _worker_name(), "attempt": ctx.attempt}


@task("test.block_sync")
def block_sync(ctx: SyncJobContext, payload: Any) -> dict[str, Any]:
    if (payload or {}).get("mark_start"):
        ctx.progress(1, "started")
    time.sleep(_seconds(payload))
    return {"worker": _worker_name(), "attempt": ctx.attempt}


@task("test.stubborn")
def stubborn(ctx: SyncJobContext, payload: Any) -> None:
    Path(payload["pid_file"]).write_text(str(os.getpid()))
    time.sleep(payload.get("seconds", 3600))


@task("test.report")
def report(ctx: SyncJobContext, payload: Any) -> dict[str, Any]:
    ctx.progress(50, "half way")
    return {"pid": os.getpid(), "token": ctx.fencing_token, "attempt": ctx.attempt}


@task("test.permanent")
def permanent(ctx: SyncJobContext, payload: Any) -> None:
    raise PermanentJobError(f"cannot work on {payload!r}")


@task("test.progress_then_wait")
def progress_then_wait(ctx: SyncJobContext, payload: Any) -> None:
    ctx.progress(50, "half way")
    go_on = Path(payload["go_on"])
    while not go_on.exists():
        time.sleep(0.02)


_STALLED: set[str] = set()


@task("test.stall")
async def stall(ctx: JobContext, payload: Any) -> str:
    """Blocks the worker's whole event loop (no renewals, no reports) for a while, once per
    job in each worker process (one that always outlived its lease would be a poison job)."""
    if ctx.job_id not in _STALLED:
        _STALLED.add(ctx.job_id)
        time.sleep(float(payload.get("seconds", 3.0)))  # noqa: ASYNC251 - stalls on purpose
    return "stalled"


@task("test.echo_after")
async def echo_after(ctx: JobContext, payload: Any) -> Any:
    """Return the payload after ``ms`` milliseconds (a quick job that is not instant)."""
    await asyncio.sleep(payload.get("ms", 10) / 1000)
    return payload


@task("test.tally")
async def tally(ctx: JobContext, payload: Any) -> Any:
    """Appends ``<job id> <worker> <unix time>`` to the file ``payload["file"]`` (one write
    per run, so a job run twice shows twice), sleeps ``payload["sleep"]`` s and returns
    ``payload["n"]``."""
    line = f"{ctx.job_id} {_worker_name()} {time.time():.3f}\n".encode()
    fd = os.open(payload["file"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    await asyncio.sleep(float(payload.get("sleep", 0.0)))
    return payload.get("n")
