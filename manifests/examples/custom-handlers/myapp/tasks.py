"""Handlers registered when the worker imports this module (spec.worker.handlers: [myapp.tasks])."""

from __future__ import annotations

import asyncio
from typing import Any

import jobqueue


@jobqueue.task("thumbnail")
async def thumbnail(ctx: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """An async handler: runs on the worker's event loop, reports progress, honours cancel."""
    sizes = payload.get("sizes", [64, 128, 256])
    for done, size in enumerate(sizes, start=1):
        if ctx.cancelled:
            return {"cancelled_after": done - 1}
        await asyncio.sleep(0.1)  # stand-in for the real work
        await ctx.progress(100 * done // len(sizes), f"{size}px done")
    return {"image": payload["image"], "sizes": sizes}


@jobqueue.task("word-count")
def word_count(ctx: Any, payload: dict[str, Any]) -> int:
    """A plain function: runs in the worker's thread pool."""
    return len(str(payload["text"]).split())
