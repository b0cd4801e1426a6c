"""Handlers the worker pods of the operator's cluster tests import (JOBQUEUE_HANDLERS)."""

from __future__ import annotations

import asyncio
from typing import Any

import jobqueue


@jobqueue.task("sleep")
async def sleep(ctx: Any, payload: Any) -> dict[str, Any]:
    """Take ``payload["seconds"]`` (default 1) and report which worker ran the job."""
    seconds = float((payload or {}).get("seconds", 1.0))
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@jobqueue.task("fail")
async def fail(ctx: Any, payload: Any) -> None:
    """Always fails: the failure-storm handler."""
    raise RuntimeError("this handler always fails")
