"""Liveness: fail when any poll loop has stalled (kopf serves it on /healthz)."""

from __future__ import annotations

import time
from typing import Any

import kopf

from jobqueue_operator.handlers.lifecycle import context_of


def stalled_loops(heartbeats: dict[tuple[str, str], tuple[float, float]], now: float) -> list[str]:
    """JobQueues whose loop has been silent longer than allowed (pure)."""
    return sorted(
        f"{ns}/{name}" for (ns, name), (tick, allowed) in heartbeats.items() if now - tick > allowed
    )


@kopf.on.probe(id="poll_loops")
async def poll_loops(memo: kopf.Memo, **_: Any) -> dict[str, int]:
    ctx = context_of(memo)
    stalled = stalled_loops(ctx.heartbeats, time.monotonic())
    if stalled:
        raise RuntimeError(f"poll loops stalled: {', '.join(stalled)}")
    return {"loops": len(ctx.heartbeats)}
