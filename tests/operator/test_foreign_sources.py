"""The BullMQ, Celery and RQ adapters against the systems' real workers and clients (bullmq
5.45.2 as Flowise pins it and bullmq 6; celery with Dify's flags; rq), on a real
redis-server: what each counts where a list-length scaler (KEDA's) sees less, and that each
adapter only reads (MONITOR, DUMP of every key)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from foreign_env import Foreign
from jobqueue_operator.scaling import Signal
from jobqueue_operator.sources.base import Observation, QueueSource
from jobqueue_operator.sources.bullmq import BullMQSource
from jobqueue_operator.sources.celery import CelerySource
from jobqueue_operator.sources.rq import RQSource
from readonly import Monitor, changed, snapshot, writes

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(180)]

PREDICTION, UPSERTION = "flowise-queue-prediction", "flowise-queue-upsertion"


async def release() -> None:
    pass


@pytest.fixture(autouse=True)
def stop_workers(foreign: Foreign) -> Iterator[None]:
    """No worker outlives its test (a Celery worker's heartbeats would count in the next)."""
    yield
    foreign.stop_all()


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    c = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield c
    await c.aclose()


async def read_until(
    source: QueueSource, check: Callable[[Observation], bool], within: float = 60.0
) -> Observation:
    """Read until ``check`` holds; fail with the last read after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        seen = await source.read()
        if check(seen):
            return seen
        assert time.monotonic() < deadline, f"not seen within {within}s: {seen}"
        await _sleep(0.2)


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, within: float = 60) -> int:
    os.killpg(process.pid, sig)
    return process.wait(within)


# -- BullMQ (Flowise) ---------------------------------------------------------------------


@pytest.mark.parametrize("version", ["bullmq5", "bullmq6"])
async def test_bullmq_waiting_counts_prioritized_paused_and_overdue_delayed_jobs(
    foreign: Foreign, redis_url: str, client: aioredis.Redis, version: str
) -> None:
    jobs = [{"seconds": 1}] * 3 + [{"seconds": 1, "priority": 5}] * 2 + [{"delay": 1}] * 2
    foreign.bullmq_add(redis_url, {"queue": PREDICTION, "jobs": jobs}, version)
    foreign.bullmq_add(redis_url, {"queue": UPSERTION, "jobs": [{}] * 2, "pause": True}, version)
    r = redis.Redis.from_url(redis_url)
    source = BullMQSource(client, release, [PREDICTION, UPSERTION], window_seconds=60)
    seen = await read_until(source, lambda o: o.metrics.oldest_wait_seconds > 0.2)
    m = seen.metrics
    # 3 plain + 2 prioritized + 2 paused wait; 2 delayed jobs are due but only a worker would
    # promote them: with no worker running they are backlog all the same.
    assert (m.queued, m.delayed, m.delayed_due, m.active) == (7, 2, 2, 0)
    assert m.backlog == 9
    keda = r.llen(f"bull:{PREDICTION}:wait")  # what a list-length scaler reads
    assert keda <= 4, keda
    assert seen.worker_count == 0 and Signal.WORKERS in seen.observed


@pytest.mark.parametrize("version", ["bullmq5", "bullmq6"])
async def test_bullmq_jobs_a_high_concurrency_worker_holds_stay_in_the_backlog(
    foreign: Foreign, redis_url: str, client: aioredis.Redis, tmp_path: Path, version: str
) -> None:
    """Flowise's default WORKER_CONCURRENCY (100000): one worker takes every job, the wait
    list empties (KEDA scales to zero), yet the backlog stays until the jobs finish."""
    env = foreign.env(REDIS_URL=redis_url, BULLMQ=version)
    worker = foreign.start(foreign.bullmq_worker_argv(), env, tmp_path / "worker.log")
    source = BullMQSource(client, release, [PREDICTION], window_seconds=60)
    await read_until(source, lambda o: (o.worker_count or 0) >= 1)
    jobs = [{"seconds": 4}] * 6 + [{"seconds": 1, "fail": True}]
    foreign.bullmq_add(redis_url, {"queue": PREDICTION, "jobs": jobs}, version)
    seen = await read_until(source, lambda o: o.metrics.active == 7)
    assert seen.metrics.queued == 0 and seen.metrics.backlog == 7
    assert redis.Redis.from_url(redis_url).llen(f"bull:{PREDICTION}:wait") <= 1
    # Flowise removes failed jobs (removeOnFail): the events stream still counts them.
    done = await read_until(source, lambda o: o.metrics.attempts_succeeded == 6)
    assert done.metrics.attempts_failed == 1 and done.metrics.backlog == 0
    assert redis.Redis.from_url(redis_url).zcard(f"bull:{PREDICTION}:failed") == 0
    assert stop(worker) == 0  # closed on SIGTERM, as Flowise's worker does


@pytest.mark.parametrize("version", ["bullmq5", "bullmq6"])
async def test_bullmq_reads_change_nothing(
    foreign: Foreign, redis_url: str, client: aioredis.Redis, tmp_path: Path, version: str
) -> None:
    env = foreign.env(REDIS_URL=redis_url, BULLMQ=version)
    worker = foreign.start(foreign.bullmq_worker_argv(), env, tmp_path / "worker.log")
    source = BullMQSource(client, release, [PREDICTION, UPSERTION], window_seconds=60)
    await read_until(source, lambda o: (o.worker_count or 0) >= 1)
    jobs = [{"seconds": 0}] * 2 + [{"seconds": 0, "fail": True}] + [{"seconds": 60}] * 2
    foreign.bullmq_add(redis_url, {"queue": PREDICTION, "jobs": jobs}, version)
    await read_until(source, lambda o: o.metrics.active == 2 and o.metrics.attempts_failed == 1)
    stop(worker, signal.SIGKILL)  # mid-job: its jobs stay active, their locks in place
    more = [{"seconds": 1}] * 2 + [{"priority": 3}] + [{"delay": 1}, {"delay": 3_600_000}]
    foreign.bullmq_add(redis_url, {"queue": PREDICTION, "jobs": more}, version)
    foreign.bullmq_add(redis_url, {"queue": UPSERTION, "jobs": [{}], "pause": True}, version)
    r = redis.Redis.from_url(redis_url)
    before = snapshot(r)
    monitor = Monitor(redis_url, tmp_path / "monitor.log")
    for _ in range(3):
        seen = await source.read()
    names = monitor.stop()
    assert seen.metrics.active == 2 and seen.metrics.delayed == 2 and seen.metrics.delayed_due == 1
    # (CLIENT LIST, an admin command, never shows in MONITOR; it reads connections only.)
    assert {"xrange", "zcount", "hmget"} <= set(names)
    assert seen.worker_count == 0  # the killed worker's connections are gone
    assert writes(r, names) == []
    assert changed(before, snapshot(r)) == []


# -- Celery (Dify, Langflow) --------------------------------------------------------------

DIFY_FLAGS = ("-P", "gevent", "--max-tasks-per-child", "50")


def celery_worker(
    foreign: Foreign, broker: str, log: Path, queues: list[str], *flags: str, **env: str
) -> subprocess.Popen[bytes]:
    argv = foreign.celery_worker_argv(queues, *flags)
    return foreign.start(argv, foreign.env(CELERY_BROKER_URL=broker, **env), log)


async def test_celery_prefetched_and_running_tasks_count_while_the_list_is_empty(
    foreign: Foreign, redis_url: str, tmp_path: Path
) -> None:
    """A worker with Celery's default prefetch (4 per slot, Langflow's setting) empties the
    list while it runs one task at a time: a list-length scaler sees nothing, the backlog is
    there (the running task counted once: acked as it starts, it is off the unacked hash)."""
    broker = redis_url.rsplit("/", 1)[0] + "/1"  # Dify's broker database
    client = aioredis.Redis.from_url(broker, decode_responses=True)
    source = CelerySource(client, release, ["langflow", "mail"], window_seconds=60)
    flags = ("-P", "threads", "-c", "1", "-n", "celery@pod-a")
    worker = celery_worker(foreign, broker, tmp_path / "w.log", ["langflow", "mail"], *flags)
    await read_until(source, lambda o: len(o.workers) == 1)
    foreign.celery_send(broker, {"queue": "langflow", "tasks": [{"seconds": 4}] * 5})
    seen = await read_until(source, lambda o: o.metrics.active == 1 and o.metrics.queued == 3)
    assert redis.Redis.from_url(broker).llen("langflow") == 0  # KEDA's view: nothing to do
    assert [(w.name, w.jobs_in_hand) for w in seen.workers] == [("pod-a", 1)]
    assert Signal.OUTCOMES not in seen.observed  # no -E: no task events, no failure gate
    await read_until(source, lambda o: o.metrics.backlog == 0, within=90)
    assert stop(worker) == 0  # warm shutdown
    await source.close()
    await client.aclose()


async def test_celery_under_gevent_counts_each_task_once(
    foreign: Foreign, redis_url: str, tmp_path: Path
) -> None:
    """Dify's pool (gevent): the running task stays unacked until it ends, so the heartbeat's
    running tasks are taken off the held ones: no read counts more than what is unfinished."""
    broker = redis_url.rsplit("/", 1)[0] + "/1"
    r = redis.Redis.from_url(broker)
    client = aioredis.Redis.from_url(broker, decode_responses=True)
    source = CelerySource(client, release, ["dataset"], window_seconds=60)
    flags = (*DIFY_FLAGS, "-c", "1", "--prefetch-multiplier", "1", "-n", "celery@pod-g")
    worker = celery_worker(foreign, broker, tmp_path / "w.log", ["dataset"], *flags)
    await read_until(source, lambda o: len(o.workers) == 1)
    order = {"queue": "dataset", "tasks": [{"seconds": 3}] * 4, "mark": f"{broker}#done"}
    foreign.celery_send(broker, order)
    seen: list[tuple[int, int, int]] = []
    deadline = time.monotonic() + 90
    while (unfinished := 4 - int(r.llen("done"))) > 0:
        assert time.monotonic() < deadline, seen
        m = (await source.read()).metrics
        seen.append((unfinished, m.backlog, m.active))
        await _sleep(0.2)
    assert all(backlog <= unfinished for unfinished, backlog, _ in seen), seen
    # ...and counts all of it (the running, the prefetched and the listed tasks) at a read
    # taken while at least three were left. (The first read may come after the first task
    # ended on a loaded machine, so "4 at some read" would assume a timing.)
    assert any(backlog == unfinished >= 3 for unfinished, backlog, _ in seen), seen
    assert any(active == 1 for _, _, active in seen)
    assert stop(worker) == 0
    await source.close()
    await client.aclose()


async def test_celery_priority_lists_prefix_eta_and_age(
    foreign: Foreign, redis_url: str, tmp_path: Path
) -> None:
    broker = redis_url.rsplit("/", 1)[0] + "/1"
    tasks = [{"seconds": 1}] * 2 + [{"seconds": 1, "priority": 9}] * 3
    foreign.celery_send(broker, {"queue": "langflow", "tasks": tasks})
    foreign.celery_send(broker, {"queue": "dataset", "tasks": [{}]}, CELERY_GLOBAL_KEYPREFIX="d:")
    r = redis.Redis.from_url(broker)
    assert r.llen("langflow") == 2  # a list-length scaler misses the priority lists
    client = aioredis.Redis.from_url(broker, decode_responses=True)
    langflow = CelerySource(client, release, ["langflow"], window_seconds=60)
    seen = await langflow.read()
    assert seen.metrics.queued == 5 and seen.metrics.oldest_wait_seconds == 0.0
    aged = await read_until(langflow, lambda o: o.metrics.oldest_wait_seconds >= 0.5)
    assert aged.metrics.queued == 5
    prefixed = CelerySource(client, release, ["dataset"], prefix="d:", window_seconds=60)
    assert (await prefixed.read()).metrics.queued == 1
    # An ETA task is held by the worker that took it (unacked): delayed, not waiting.
    worker = celery_worker(foreign, broker, tmp_path / "w.log", ["mail"], *DIFY_FLAGS, "-c", "1",
                           "-n", "celery@pod-b", "-E")  # fmt: skip
    mail = CelerySource(client, release, ["mail"], window_seconds=60)
    await read_until(mail, lambda o: len(o.workers) == 1)
    foreign.celery_send(broker, {"queue": "mail", "tasks": [{"countdown": 600}, {"fail": True}]})
    seen = await read_until(mail, lambda o: o.metrics.delayed == 1 and o.metrics.backlog == 0)
    assert Signal.OUTCOMES in seen.observed  # -E: task events give the outcomes
    await read_until(mail, lambda o: o.metrics.attempts_failed == 1)
    stop(worker, signal.SIGKILL)
    for source in (langflow, prefixed, mail):
        await source.close()
    await client.aclose()


async def test_celery_reads_change_nothing(
    foreign: Foreign, redis_url: str, tmp_path: Path
) -> None:
    broker = redis_url.rsplit("/", 1)[0] + "/1"
    client = aioredis.Redis.from_url(broker, decode_responses=True)
    source = CelerySource(client, release, ["dataset", "mail"], window_seconds=60)
    worker = celery_worker(foreign, broker, tmp_path / "w.log", ["dataset"], "-P", "threads",
                           "-c", "1", "-n", "celery@pod-c")  # fmt: skip
    await read_until(source, lambda o: len(o.workers) == 1)
    foreign.celery_send(broker, {"queue": "dataset", "tasks": [{"seconds": 60}] * 3})
    # Threads ack a task as it starts: 2 held, less the 1 the heartbeat says runs (the
    # adapter cannot tell the pools apart: with prefork and threads it counts one less).
    await read_until(source, lambda o: o.metrics.active == 1 and o.metrics.queued == 2 - 1)
    stop(worker, signal.SIGKILL)  # its prefetched tasks stay unacked
    await read_until(source, lambda o: not o.workers)  # its last heartbeat expired
    foreign.celery_send(broker, {"queue": "mail", "tasks": [{"priority": 9}, {}]})
    r = redis.Redis.from_url(broker)
    before = snapshot(r)
    monitor = Monitor(broker, tmp_path / "monitor.log")
    for _ in range(3):
        seen = await source.read()
    names = monitor.stop()
    assert seen.metrics.queued == 4  # 2 in the lists, 2 unacked by the dead worker
    assert "hvals" in names and "llen" in names
    assert writes(r, names) == []
    assert changed(before, snapshot(r)) == []
    await source.close()
    await client.aclose()


# -- RQ -----------------------------------------------------------------------------------


async def test_rq_counts_queue_started_scheduled_and_finished_jobs(
    foreign: Foreign, redis_url: str, client: aioredis.Redis, tmp_path: Path
) -> None:
    source = RQSource(client, release, ["default", "high"], window_seconds=60)
    foreign.rq_enqueue(redis_url, {"queue": "default", "jobs": [{"seconds": 3}] * 3})
    foreign.rq_enqueue(
        redis_url, {"queue": "high", "jobs": [{"in_seconds": 1}, {"in_seconds": 600}]}
    )
    seen = await read_until(source, lambda o: o.metrics.delayed_due == 1)
    m = seen.metrics
    assert (m.queued, m.active, m.delayed, m.backlog) == (3, 0, 2, 4)
    assert m.oldest_wait_seconds > 0
    argv = foreign.rq_worker_argv(redis_url, ["default"], "--name", "pod-r")
    worker = foreign.start(argv, foreign.env(), tmp_path / "rq.log")
    # RQ moves a job to its intermediate list (counted as active) before the worker marks
    # itself busy, so a read may fall between the two steps: wait until both show.
    busy = await read_until(
        source, lambda o: o.metrics.active == 1 and any(w.jobs_in_hand for w in o.workers)
    )
    assert [(w.name, w.jobs_in_hand) for w in busy.workers] == [("pod-r", 1)]
    foreign.rq_enqueue(redis_url, {"queue": "default", "jobs": [{"fail": True}]})
    done = await read_until(source, lambda o: o.metrics.attempts_failed == 1, within=60)
    assert done.metrics.attempts_succeeded == 3 and done.metrics.queued == 0
    assert stop(worker) == 0  # warm shutdown: the running job finishes first


async def test_rq_reads_change_nothing(
    foreign: Foreign, redis_url: str, client: aioredis.Redis, tmp_path: Path
) -> None:
    source = RQSource(client, release, ["default"], window_seconds=60)
    argv = foreign.rq_worker_argv(redis_url, ["default"], "--name", "pod-s")
    worker = foreign.start(argv, foreign.env(), tmp_path / "rq.log")
    jobs = [{"fail": True}, {"seconds": 0}, {"seconds": 60}]
    foreign.rq_enqueue(redis_url, {"queue": "default", "jobs": jobs})
    # The 60 s job is the one in hand once the other two have ended (waiting for the failure
    # alone also matched while the 0 s job was still taken, and then two stayed queued).
    await read_until(
        source,
        lambda o: (
            (o.metrics.active, o.metrics.attempts_failed, o.metrics.attempts_succeeded) == (1, 1, 1)
        ),
    )
    stop(worker, signal.SIGKILL)
    foreign.rq_enqueue(redis_url, {"queue": "default", "jobs": [{}, {"in_seconds": 600}]})
    r = redis.Redis.from_url(redis_url)
    before = snapshot(r)
    monitor = Monitor(redis_url, tmp_path / "monitor.log")
    for _ in range(3):
        seen = await source.read()
    names = monitor.stop()
    assert seen.metrics.queued == 1 and seen.metrics.delayed == 1
    assert "zcount" in names and "smembers" in names
    assert writes(r, names) == []
    assert changed(before, snapshot(r)) == []


# -- Scale-down: SIGTERM to a busy worker -------------------------------------------------


async def test_sigterm_lets_each_systems_busy_worker_finish_its_job(
    foreign: Foreign, redis_url: str, client: aioredis.Redis, tmp_path: Path
) -> None:
    """What the ReplicaSet's SIGTERM does to a busy worker of each system: Flowise's BullMQ
    worker closes (its active job finishes), Celery's warm shutdown (Dify's gevent pool)
    finishes the running task, RQ's warm shutdown finishes the job in hand; each exits 0
    within a grace period that covers the job."""
    broker = redis_url.rsplit("/", 1)[0] + "/1"
    r, rb = redis.Redis.from_url(redis_url), redis.Redis.from_url(broker)
    bull = foreign.start(foreign.bullmq_worker_argv(), foreign.env(REDIS_URL=redis_url),
                         tmp_path / "bull.log")  # fmt: skip
    celery = celery_worker(foreign, broker, tmp_path / "celery.log", ["dataset"], *DIFY_FLAGS,
                           "-c", "1", "-n", "celery@pod-t")  # fmt: skip
    rq = foreign.start(foreign.rq_worker_argv(redis_url, ["default"], "--name", "pod-t"),
                       foreign.env(), tmp_path / "rq.log")  # fmt: skip
    bullmq = BullMQSource(client, release, [PREDICTION], window_seconds=60)
    await read_until(bullmq, lambda o: (o.worker_count or 0) >= 1)
    foreign.bullmq_add(redis_url, {"queue": PREDICTION, "jobs": [{"seconds": 4}]})
    foreign.celery_send(broker, {"queue": "dataset", "tasks": [{"seconds": 4}],
                                 "mark": f"{broker}#done"})  # fmt: skip
    foreign.rq_enqueue(redis_url, {"queue": "default", "jobs": [{"seconds": 4}]})

    def busy() -> bool:
        logs = [(tmp_path / f"{name}.log").read_text() for name in ("bull", "celery", "rq")]
        return all("start" in log for log in logs)

    deadline = time.monotonic() + 60
    while not busy():
        assert time.monotonic() < deadline, "the workers did not start their jobs"
        await _sleep(0.1)
    for worker in (bull, celery, rq):
        os.killpg(worker.pid, signal.SIGTERM)
    assert [w.wait(60) for w in (bull, celery, rq)] == [0, 0, 0]
    assert r.zcard(f"bull:{PREDICTION}:completed") == 1
    assert rb.llen("done") == 1
    assert r.zcard("rq:finished:default") == 1
