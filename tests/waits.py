"""Waiting on a condition in tests (imported by name: tests/ is on sys.path)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["held_within", "wait_until"]


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


def held_within(condition: Callable[[], bool], within: float = 20.0, every: float = 0.005) -> bool:
    """Whether ``condition`` became true within ``within`` seconds, polled in a blocking loop:
    for code that must wait where it cannot await (inside a generator an awaited call
    drives), the outcome left for the test to assert."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True
