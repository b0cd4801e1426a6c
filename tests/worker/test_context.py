"""The job context handlers receive: progress checks, cancellation, the thread variant."""

from __future__ import annotations

import asyncio

import pytest
from jobqueue.runtime.context import JobContext, SyncJobContext, check_progress


def make_ctx(reports: list[tuple[float, str | None]]) -> JobContext:
    async def reporter(percent: float, message: str | None) -> None:
        reports.append((percent, message))

    return JobContext(
        job_id="j1", queue="q", name="n", attempt=2, max_attempts=3, reporter=reporter
    )


async def test_progress_is_forwarded_and_checked() -> None:
    reports: list[tuple[float, str | None]] = []
    ctx = make_ctx(reports)
    await ctx.progress(40, "reading")
    assert reports == [(40.0, "reading")]
    with pytest.raises(ValueError, match="between 0 and 100"):
        await ctx.progress(101)
    with pytest.raises(TypeError, match="number"):
        await ctx.progress("50")  # type: ignore[arg-type]
    assert len(reports) == 1


async def test_cancel_request_is_visible_and_wakes_waiters() -> None:
    ctx = make_ctx([])
    assert not ctx.cancelled
    waiter = asyncio.create_task(ctx.wait_cancelled())
    await asyncio.sleep(0)
    assert not waiter.done()
    ctx.request_cancel("cancel requested")
    await asyncio.wait_for(waiter, 5)
    assert ctx.cancelled and ctx.cancel_reason == "cancel requested"
    ctx.request_cancel("timeout")  # the first reason sticks
    assert ctx.cancel_reason == "cancel requested"


async def test_sync_context_progress_blocks_until_stored() -> None:
    reports: list[tuple[float, str | None]] = []

    async def reporter(percent: float, message: str | None) -> None:
        await asyncio.sleep(0.01)
        reports.append((percent, message))

    ctx = SyncJobContext(
        loop=asyncio.get_running_loop(), job_id="j", queue="q", name="n", attempt=1,
        max_attempts=1, reporter=reporter,
    )  # fmt: skip

    def handler() -> int:
        ctx.progress(10, "a")
        ctx.progress(90)
        return len(reports)

    assert await asyncio.to_thread(handler) == 2
    assert reports == [(10.0, "a"), (90.0, None)]


def test_check_progress_rejects_booleans_and_bad_messages() -> None:
    with pytest.raises(TypeError):
        check_progress(True, None)
    with pytest.raises(TypeError, match="message"):
        check_progress(5, 7)  # type: ignore[arg-type]
    assert check_progress(0, None) == (0.0, None)
    with pytest.raises(ValueError, match="over the limit of 4096 bytes"):
        check_progress(5, "é" * 2049)
    bad_bytes = b"\xff".decode("utf-8", "surrogateescape")
    assert check_progress(5, f"odd {bad_bytes}") == (5.0, "odd \\udcff")
