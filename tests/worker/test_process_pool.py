"""Blocking handlers in killable child processes (``sync_pool="process"``): an attempt past
its timeout, or cancelled, is killed, not left running. Handlers from jq_test_handlers.py."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from jobqueue.client import AsyncQueue
from jobqueue.models import JobState
from jobqueue.registry import DEFAULT_REGISTRY
from jobqueue.runtime.process import load_handlers
from worker_waits import wait_for_state, wait_until

if TYPE_CHECKING:
    from worker_fixtures import StartWorker

pytest_plugins = ["worker_fixtures"]

pytestmark = [pytest.mark.redis, pytest.mark.timeout(120)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def read_pid(path: Path) -> int | None:
    text = path.read_text() if path.exists() else ""
    return int(text) if text else None


async def pid_in(path: Path) -> int:
    """The PID a stubborn handler wrote, once it has."""

    async def written() -> bool:
        return await asyncio.to_thread(read_pid, path) is not None

    await wait_until(written, within=60)
    pid = read_pid(path)
    assert pid is not None
    return pid


@pytest.fixture
async def process_worker(start_worker: StartWorker) -> None:
    load_handlers(["jq_test_handlers"])
    await start_worker(DEFAULT_REGISTRY, sync_pool="process", concurrency=2,
                       handlers=["jq_test_handlers"])  # fmt: skip


@pytest.mark.usefixtures("process_worker")
async def test_an_attempt_past_its_timeout_is_killed(queue: AsyncQueue, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    jid = await queue.submit("test.stubborn", {"pid_file": str(pid_file)}, timeout=1, attempts=1)
    pid = await pid_in(pid_file)
    job = await wait_for_state(queue, jid, JobState.FAILED, within=60)
    assert job.error is not None and job.error.startswith("JobTimeout:")

    async def gone() -> bool:
        return not alive(pid)

    await wait_until(gone, within=30)


@pytest.mark.usefixtures("process_worker")
async def test_a_cancelled_attempt_is_killed(queue: AsyncQueue, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    jid = await queue.submit("test.stubborn", {"pid_file": str(pid_file)})
    pid = await pid_in(pid_file)
    await queue.cancel(jid)
    job = await queue.wait(jid, timeout=30)
    assert job.state is JobState.CANCELLED

    async def gone() -> bool:
        return not alive(pid)

    await wait_until(gone, within=30)


@pytest.mark.usefixtures("process_worker")
async def test_results_progress_and_errors_cross_the_process_boundary(
    queue: AsyncQueue,
) -> None:
    ok = await queue.submit("test.report")
    bad = await queue.submit("test.permanent", [1, 2], attempts=3)
    job = await queue.wait(ok, timeout=60)
    assert job.state is JobState.COMPLETED
    assert job.result["pid"] != os.getpid()
    assert job.result["attempt"] == 1 and job.result["token"] > 0
    failed = await queue.wait(bad, timeout=60)
    assert (failed.state, failed.attempts) == (JobState.FAILED, 1)
    assert failed.error == "PermanentJobError: cannot work on [1, 2]"


@pytest.mark.usefixtures("process_worker")
async def test_progress_from_a_child_is_stored(queue: AsyncQueue, tmp_path: Path) -> None:
    go_on = tmp_path / "go-on"
    jid = await queue.submit("test.progress_then_wait", {"go_on": str(go_on)})

    async def progressed() -> bool:
        job = await queue.get(jid)
        return (job.progress, job.progress_message) == (50, "half way")

    await wait_until(progressed, within=60)
    await asyncio.to_thread(go_on.write_text, "")
    assert (await queue.wait(jid, timeout=60)).state is JobState.COMPLETED
