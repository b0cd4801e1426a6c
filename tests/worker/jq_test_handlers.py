"""Handlers for worker-process tests (imported with ``--handlers jq_test_handlers``).

``test.whoami`` sleeps (seconds chosen per worker name, so one worker can be slow and the
next fast) and returns the name of the worker that ran it; ``test.block_sync`` is a thread
handler that sleeps without noticing cancellation.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from jobqueue.registry import task
from jobqueue.runtime.context import JobContext, SyncJobContext


def _worker_name() -> str:
    return os.environ.get("JOBQUEUE_WORKER_NAME", "?")


def _seconds(payload: Any) -> float:
    payload = payload or {}
    per_worker = payload.get("sleep", {})
    return float(per_worker.get(_worker_name(), payload.get("default", 0.0)))


@task("test.whoami")
async def whoami(ctx: JobContext, payload: Any) -> dict[str, Any]:
    await asyncio.sleep(_seconds(payload))
    return {"worker": _worker_name(), "attempt": ctx.attempt}


@task("test.block_sync")
def block_sync(ctx: SyncJobContext, payload: Any) -> dict[str, Any]:
    time.sleep(_seconds(payload))
    return {"worker": _worker_name(), "attempt": ctx.attempt}
