"""The poll loops' registry (poll_loops.py): one loop per JobQueue, started by its first
watch event, given each later spec in place, stopped by deletion and at exit, started again
after a crash; and it keeps only what a loop reads of the JobQueue."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
import pytest
from jobqueue_operator import poll_loops
from jobqueue_operator.poll_loops import PollLoops, Stop


def jobqueue(uid: str = "u1", generation: int = 1, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "jobqueue.dev/v1alpha1",
        "kind": "JobQueue",
        "metadata": {"name": "q", "namespace": "ns", "uid": uid, "generation": generation,
                     "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                     **meta},
        "spec": {"scaling": {"maxReplicas": generation}},
        "status": {"deployment": "q-worker", "conditions": [{"type": "Ready"}]},
    }  # fmt: skip


class Recorder:
    """A loop that records its body and runs until stopped (or raises, while told to)."""

    def __init__(self) -> None:
        self.bodies: list[kopf.Body] = []
        self.crashes = 0
        self.started = asyncio.Event()

    async def __call__(self, body: kopf.Body, stop: Stop, logger: Any) -> None:
        self.bodies.append(body)
        self.started.set()
        if self.crashes:
            self.crashes -= 1
            raise RuntimeError("boom")
        await stop.wait()


async def until(condition: Any) -> None:
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 - a condition of several objects
            await asyncio.sleep(0.01)


async def test_a_loop_starts_once_and_reads_each_new_spec_in_place() -> None:
    run = Recorder()
    loops = PollLoops(run, kopf.OperatorSettings())
    loops.observe(None, jobqueue())  # the initial listing
    loops.observe("MODIFIED", jobqueue())  # before the loop ran: the status stays whole
    await until(lambda: run.bodies)
    body = run.bodies[0]
    assert body["metadata"] == {"name": "q", "namespace": "ns", "uid": "u1", "generation": 1}
    assert body.status["conditions"] == [{"type": "Ready"}]  # the start reads all of it
    loops.observe("MODIFIED", jobqueue(generation=2))
    assert body.spec["scaling"]["maxReplicas"] == 2 and body["metadata"]["generation"] == 2
    assert dict(body.status) == {"deployment": "q-worker"}  # later: only what a tick reads
    assert len(run.bodies) == 1 and len(loops) == 1
    await loops.close()


@pytest.mark.parametrize("event", ["DELETED", "deletionTimestamp"])
async def test_deletion_stops_the_loop(event: str) -> None:
    run = Recorder()
    loops = PollLoops(run, kopf.OperatorSettings())
    loops.observe("ADDED", jobqueue())
    await run.started.wait()
    task = loops._loops["u1"].task
    if event == "DELETED":
        loops.observe("DELETED", jobqueue())
    else:
        loops.observe("MODIFIED", jobqueue(deletionTimestamp="2026-12-02T00:00:00Z"))
    assert task is not None
    await asyncio.wait_for(task, 10)
    assert len(loops) == 0
    await loops.stop_and_wait("u1")  # kopf's deletion handler after the event: nothing left


async def test_a_crashed_loop_starts_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(poll_loops, "RESTART_SECONDS", 0.01)
    run = Recorder()
    run.crashes = 2
    loops = PollLoops(run, kopf.OperatorSettings())
    loops.observe("ADDED", jobqueue())
    await until(lambda: len(run.bodies) == 3)  # two crashes, then it runs
    assert run.crashes == 0 and len(loops) == 1
    await loops.close()


async def test_exit_cancels_a_loop_that_does_not_stop(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(poll_loops, "STOP_TIMEOUT_SECONDS", 0.1)
    cancelled = asyncio.Event()

    async def stubborn(body: kopf.Body, stop: Stop, logger: Any) -> None:
        try:
            await asyncio.sleep(3600)  # ignores its stop flag
        except asyncio.CancelledError:
            cancelled.set()
            raise

    loops = PollLoops(stubborn, kopf.OperatorSettings())
    loops.observe("ADDED", jobqueue())
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING):
        await loops.close()
    assert cancelled.is_set()
    assert "did not stop" in caplog.text
