"""Worker processes (``jobq worker``) under kill -9, SIGSTOP/SIGCONT and SIGTERM.

Handlers come from jq_test_handlers.py beside this file; ``test.whoami`` returns the name of
the worker that ran it, so a test can tell whose run was recorded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from jobqueue.client import AsyncQueue
from jobqueue.models import JobState
from worker_waits import wait_for_state, wait_until

pytest_plugins = ["worker_fixtures"]

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(180)]

HERE = Path(__file__).parent


class WorkerProc:
    def __init__(self, name: str, redis_url: str, log_dir: Path, *args: str) -> None:
        self.name = name
        self.log_path = log_dir / f"worker-{name}.log"
        env = {
            **os.environ,
            "JOBQUEUE_REDIS_URL": redis_url,
            "JOBQUEUE_WORKER_NAME": name,
            "JOBQUEUE_METRICS_PORT": "0",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
        }
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jobqueue.cli", "worker", "work",
             "--handlers", "jq_test_handlers", *args],
            env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout: float = 60) -> int:
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._log.close()


Spawn = Callable[..., WorkerProc]


@pytest.fixture
def spawn(redis_url: str, tmp_path: Path) -> Iterator[Spawn]:
    procs: list[WorkerProc] = []

    def start(name: str, *args: str) -> WorkerProc:
        proc = WorkerProc(name, redis_url, tmp_path, *args)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.close()


async def test_kill_9_mid_job_another_worker_finishes_it(queue: AsyncQueue, spawn: Spawn) -> None:
    job_id = await queue.submit("test.whoami", {"sleep": {"a": 60}}, attempts=3)
    a = spawn("a", "--lease", "2")
    running = await wait_for_state(queue, job_id, JobState.ACTIVE, within=60)
    assert running.worker is not None and running.worker.startswith("a-")
    os.kill(a.pid, signal.SIGKILL)
    assert a.wait() == -signal.SIGKILL
    spawn("b", "--lease", "2")
    job = await wait_for_state(queue, job_id, JobState.COMPLETED, within=60)
    assert job.state is JobState.COMPLETED
    # the killed run's lease lapsed: a lapse, not a failed attempt
    assert job.result == {"worker": "b", "attempt": 1}
    assert (job.attempts, job.lapses) == (1, 1)


async def test_paused_worker_late_completion_is_refused_by_the_fencing_token(
    queue: AsyncQueue, spawn: Spawn
) -> None:
    # Worker a renews every 4 s (lease 12 s) from its start and takes the job at once; its
    # handler ends 1.5 s later. When a resumes, both its handler's timer and its overdue
    # renewal are due at once, and either may run first: a reports its late completion and
    # the fencing token refuses it, or the renewal finds the lease gone and a never reports.
    # Both are fenced; what must never happen is a's result being recorded.
    job_id = await queue.submit("test.whoami", {"sleep": {"a": 1.5}}, attempts=3)
    a = spawn("a", "--lease", "12")
    await wait_for_state(queue, job_id, JobState.ACTIVE, within=60, every=0.01)
    os.kill(a.pid, signal.SIGSTOP)
    try:
        spawn("b", "--lease", "12")
        job = await wait_for_state(queue, job_id, JobState.COMPLETED, within=60)  # after the lapse
        assert job.result == {"worker": "b", "attempt": 1}
    finally:
        os.kill(a.pid, signal.SIGCONT)

    async def fenced_logged() -> bool:
        log = a.log()
        return "refused by the queue" in log or "outcome not reported: lease_lost" in log

    try:
        await wait_until(fenced_logged, within=30)
    except AssertionError:
        raise AssertionError(
            f"worker a neither refused nor saw its lease lost:\n{a.log()}"
        ) from None
    if "refused by the queue" in a.log():
        assert "stale fencing token" in a.log()
    job = await queue.get(job_id)
    assert job.state is JobState.COMPLETED
    assert job.result == {"worker": "b", "attempt": 1}  # a's late result was not recorded


async def handlers_started(queue: AsyncQueue, ids: list[str]) -> None:
    """Wait until each job's handler runs (``mark_start``), not only until it is leased: a
    job leased as the stop signal lands is handed back unstarted, as it should be."""

    async def started() -> bool:
        jobs = [await queue.get(job_id) for job_id in ids]
        return all(job.progress >= 1 for job in jobs)

    await wait_until(started, within=60)


async def test_sigterm_lets_jobs_in_hand_finish(queue: AsyncQueue, spawn: Spawn) -> None:
    job = {"sleep": {"a": 1.0}, "mark_start": True}
    ids = [await queue.submit("test.whoami", job) for _ in range(2)]
    a = spawn("a", "--concurrency", "2", "--shutdown-timeout", "60")
    await handlers_started(queue, ids)
    a.proc.send_signal(signal.SIGTERM)
    assert a.wait() == 0
    for job_id in ids:
        job = await queue.get(job_id)
        assert job.state is JobState.COMPLETED
        assert job.result == {"worker": "a", "attempt": 1}
    assert (await queue.stats()).workers == []  # unregistered on the way out


async def test_sigterm_after_the_timeout_hands_jobs_back_at_once(
    queue: AsyncQueue, spawn: Spawn
) -> None:
    slow = {"sleep": {"a": 600}, "mark_start": True}
    ids = [
        await queue.submit("test.whoami", slow),
        await queue.submit("test.block_sync", slow),  # a thread that cannot be interrupted
    ]
    a = spawn("a", "--concurrency", "2", "--shutdown-timeout", "0.5", "--lease", "60")
    await handlers_started(queue, ids)
    a.proc.send_signal(signal.SIGTERM)
    assert a.wait(timeout=30) == 0
    assert "handing 2 job(s) back" in a.log()
    # Queued again right away (the 60 s leases have not lapsed), the attempt given back.
    for job_id in ids:
        job = await queue.get(job_id)
        assert job.state is JobState.QUEUED
        assert job.attempts == 0
    stats = await queue.stats()
    assert (stats.queued, stats.active) == (2, 0)
    # Nothing is lost or stuck: another worker runs both to completion.
    b = spawn("b", "--burst", "--concurrency", "2")
    assert b.wait() == 0
    for job_id in ids:
        job = await queue.get(job_id)
        assert job.state is JobState.COMPLETED
        assert job.result == {"worker": "b", "attempt": 1}


async def test_metrics_endpoint_serves_the_metric_names(queue: AsyncQueue, spawn: Spawn) -> None:
    from fixtures_redis import free_port

    port = free_port()
    a = spawn("a", "--metrics-port", str(port), "--metrics-host", "127.0.0.1")
    job = await queue.wait(await queue.submit("debug.echo", {"x": 1}), timeout=60)
    assert job.state is JobState.COMPLETED
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        text = (await http.get("/metrics")).text
        health = await http.get("/healthz")
    for name in ("jobq_jobs_total", "jobq_job_duration_seconds", "jobq_jobs_in_flight",
                 "jobq_worker_concurrency", "jobq_lease_renewals_total"):  # fmt: skip
        assert f"# TYPE {name}" in text
    assert 'jobq_jobs_total{name="debug.echo",outcome="completed",queue="work"} 1.0' in text
    assert "jobq_worker_concurrency 10.0" in text
    assert health.status_code == 200
    a.proc.send_signal(signal.SIGTERM)
    assert a.wait() == 0
