"""Run 1: many jobs of mixed length through several worker processes at concurrency > 1 while
the run is attacked:

- a worker is SIGKILLed every ``kill_every`` seconds (its batched completions and take-next
  leases in flight) and a fresh one started in its place, as a Deployment would;
- another worker is SIGSTOPped for longer than its lease, then resumed: its jobs ran
  elsewhere meanwhile, and whatever it reports for them must be refused (fencing token);
- redis-server (AOF, appendfsync everysec) is SIGKILLed halfway and started again on the
  same files, while submits and completions are in flight.

The producer submits in batches with a dedup key per job, keeping a bounded backlog, so
submits run through the whole attack; a batch that raised is sent again (the dedup key folds
it onto the jobs that landed). Everything is bounded by ``Plan.deadline``: what is unfinished
then is reported as such, never waited for.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from jobqueue.client import AsyncQueue
from jobqueue.protocol import QueueKeys
from redis.exceptions import RedisError

from bench.chaos import tally
from bench.chaos.workers import WorkerPool
from bench.redisserver import RedisProcess

QUEUE = "chaos"
AOF = ("--appendonly", "yes", "--appendfsync", "everysec", "--maxclients", "4000")


@dataclass(frozen=True)
class Plan:
    jobs: int = 100_000
    workers: int = 4
    concurrency: int = 16
    lease_seconds: float = 4.0
    kill_every: float = 3.0
    batch: int = 500
    backlog: int = 5_000  # queued jobs the producer lets pile up before it waits
    stop_at: float = 0.3  # fraction finished when the SIGSTOP comes
    crash_at: float = 0.5  # fraction finished when Redis is killed (just after a submit)
    deadline: float = 900.0
    seed: int = 18

    @property
    def stop_for(self) -> float:
        return self.lease_seconds * 2.5


FULL = Plan()
QUICK = Plan(jobs=4_000, workers=3, concurrency=8, lease_seconds=2.0, kill_every=2.0,
             batch=200, backlog=1_000, deadline=240.0)  # fmt: skip


def job_mix(plan: Plan) -> tuple[list[dict[str, Any]], int]:
    """The jobs (mostly quick, some long enough to be caught by every fault, a few failing
    once or for good) and how many are meant to be dead-lettered."""
    rng = random.Random(plan.seed)
    specs: list[dict[str, Any]] = []
    permanent = 0
    for seq in range(plan.jobs):
        roll = rng.random()
        payload: dict[str, Any]
        if roll < 0.75:
            payload = {"ms": rng.uniform(0, 5)}
        elif roll < 0.92:
            payload = {"ms": rng.uniform(10, 100)}
        elif roll < 0.97:
            payload = {"ms": rng.uniform(500, 3_000)}
        elif roll < 0.99:
            payload = {"ms": rng.uniform(0, 20), "fail": 1}
        else:
            payload = {"ms": 1, "permanent": True}
            permanent += 1
        specs.append({"name": "chaos.run", "payload": payload, "dedup_key": f"c{seq}",
                      "backoff": "fixed:0.2", "priority": rng.randrange(10)})  # fmt: skip
    return specs, permanent


class Producer:
    def __init__(self, q: AsyncQueue, client: aioredis.Redis, plan: Plan) -> None:
        self.q, self.client, self.plan = q, client, plan
        self.acked: list[tuple[float, list[str]]] = []  # (acknowledged at, ids)
        self.errors = 0
        self.done = False

    def just_acked(self) -> bool:
        """A batch was acknowledged a moment ago (submits are flowing: the crash catches
        some in flight and some just acknowledged)."""
        return bool(self.acked) and time.time() - self.acked[-1][0] < 0.3

    @property
    def ids(self) -> list[str]:
        return list(dict.fromkeys(i for _, ids in self.acked for i in ids))

    async def run(self, specs: list[dict[str, Any]], until: float) -> None:
        queued = QueueKeys(QUEUE).queued
        seq = 0
        while seq < len(specs) and time.monotonic() < until:
            try:
                if await self.client.zcard(queued) > self.plan.backlog:
                    await asyncio.sleep(0.05)
                    continue
                ids = await self.q.submit_many(specs[seq : seq + self.plan.batch])
            except (RedisError, OSError):
                self.errors += 1  # maybe landed, maybe not: sent again, the dedup key folds it
                await asyncio.sleep(0.2)
                continue
            self.acked.append((time.time(), ids))
            seq += len(ids)
        self.done = True


async def _finished(q: AsyncQueue) -> tuple[int, int]:
    """(jobs in a terminal state, jobs still queued/active/delayed)."""
    snap = await q.protocol.stats(60)
    return snap.completed + snap.failed + snap.cancelled, snap.queued + snap.active + snap.delayed


class Attack:
    def __init__(self, pool: WorkerPool, server: RedisProcess, plan: Plan) -> None:
        self.pool, self.server, self.plan = pool, server, plan
        self.rng = random.Random(plan.seed + 1)
        self.kills: dict[str, float] = {}
        self.spawned = plan.workers
        self.pause: dict[str, Any] = {}
        self.crash: dict[str, float] = {}
        self.done_at_crash = 0

    def kill_one(self) -> None:
        victims = [n for n in self.pool.running() if n != "stopped"]
        if not victims:
            return
        name = self.rng.choice(victims)
        self.pool.kill(name)
        # when it was dead for sure: a tally line written before this came from a live worker
        self.kills[name] = time.time()
        self.spawned += 1
        self.pool.start(f"w{self.spawned}")

    async def crash_redis(self, done: int) -> None:
        self.done_at_crash = done
        self.crash["killed"] = time.time()
        self.server.kill()
        await asyncio.to_thread(self.server.start)
        self.crash["back"] = time.time()

    async def run(self, q: AsyncQueue, producer: Producer, until: float) -> None:
        next_kill = time.monotonic() + self.plan.kill_every
        fraction = 0.0
        while time.monotonic() < until:
            await asyncio.sleep(0.2)
            try:
                done, pending = await _finished(q)
            except (RedisError, OSError):
                continue
            fraction = done / self.plan.jobs
            if producer.done and pending == 0 and done >= len(producer.ids):
                return
            if time.monotonic() >= next_kill:
                self.kill_one()
                next_kill += self.plan.kill_every
            if not self.pause and fraction >= self.plan.stop_at:
                self.pool.pause("stopped")
                self.pause = {"at": time.time()}
            elif (
                self.pause
                and "resumed" not in self.pause
                and (time.time() - self.pause["at"] >= self.plan.stop_for)
            ):
                self.pool.resume("stopped")
                self.pause["resumed"] = time.time()
            if (
                not self.crash
                and fraction >= self.plan.crash_at
                and (producer.just_acked() or fraction >= self.plan.crash_at + 0.05)
            ):
                await self.crash_redis(done)
            elif self.crash and "recovered" not in self.crash and done > self.done_at_crash:
                self.crash["recovered"] = time.time()  # the first job finished after the crash


def _recovery(runs: dict[str, list[tally.Run]], kills: dict[str, float]) -> dict[str, float | None]:
    """Seconds from a worker's SIGKILL until each job it was running started elsewhere: the
    rest of its lease, then its turn in the queue (by priority, behind the backlog)."""
    delays: list[float] = []
    for job_runs in runs.values():
        for run in job_runs:
            killed = kills.get(run.worker)
            if run.mark != "S" or killed is None or run.at > killed:
                continue
            ended = any(r.mark in "EF" and r.token == run.token for r in job_runs)
            later = [r.at for r in job_runs if r.mark == "S" and r.at > killed]
            if not ended and later:
                delays.append(min(later) - killed)
    if not delays:
        return {"jobs": 0, "median": None, "p90": None, "max": None}
    p90 = statistics.quantiles(delays, n=10)[-1] if len(delays) > 1 else delays[0]
    return {"jobs": len(delays), "median": statistics.median(delays), "p90": p90,
            "max": max(delays)}  # fmt: skip


def _paused_jobs(runs: dict[str, list[tally.Run]], pause: dict[str, Any]) -> dict[str, int]:
    """Jobs the stopped worker was running when it stopped, and how many of them ran again
    under a new lease (on another worker, or on the resumed one after its own attempt was
    refused)."""
    if "at" not in pause:
        return {"held": 0, "ran_again": 0, "ran_elsewhere": 0}
    at = pause["at"]
    held: dict[str, str] = {}  # job -> token of the attempt frozen by the stop
    for job_id, job_runs in runs.items():
        for r in job_runs:
            ended = any(e.mark in "EF" and e.token == r.token and e.at < at for e in job_runs)
            if r.worker == "stopped" and r.mark == "S" and r.at < at and not ended:
                held[job_id] = r.token
    again = [
        [r for r in runs[job_id] if r.mark == "S" and r.at > at and r.token != token]
        for job_id, token in held.items()
    ]
    return {
        "held": len(held),
        "ran_again": sum(1 for later in again if later),
        "ran_elsewhere": sum(1 for later in again if any(r.worker != "stopped" for r in later)),
    }


async def _records(q: AsyncQueue, ids: list[str]) -> dict[str, dict[str, str]]:
    records: dict[str, dict[str, str]] = {}
    for start in range(0, len(ids), 2_000):
        chunk = ids[start : start + 2_000]
        records.update(zip(chunk, await q.protocol.get_many_fields(chunk), strict=True))
    return records


def _redis_figures(
    producer: Producer, records: dict[str, dict[str, str]], crash: dict[str, float]
) -> dict[str, Any]:
    if not crash:
        return {"restarted": False}
    killed = crash["killed"]
    before = [(at, ids) for at, ids in producer.acked if at <= killed]
    acked_before = [i for _, ids in before for i in ids]
    return {
        "restarted": True,
        "acked_before_crash": len(acked_before),
        "acked_lost": sum(1 for i in acked_before if not records.get(i)),
        "acked_last_1s": sum(len(ids) for at, ids in before if at > killed - 1),
        "acked_last_2s": sum(len(ids) for at, ids in before if at > killed - 2),
        "restart_seconds": crash["back"] - killed,
        # seen by the statistics polled every 0.2 s: the queue's own count of finished jobs
        "first_completion_after_seconds": crash["recovered"] - killed
        if "recovered" in crash
        else None,
    }


async def run(plan: Plan, workdir: Path | None = None) -> dict[str, Any]:
    started = time.monotonic()
    until = started + plan.deadline
    specs, meant_to_die = job_mix(plan)
    with tempfile.TemporaryDirectory(prefix="chaos-worker-") as tmp:
        base = workdir or Path(tmp)
        server = RedisProcess(base / "redis", extra=AOF).start()
        client = aioredis.Redis.from_url(server.url, decode_responses=True)
        q = AsyncQueue(QUEUE, redis=client)
        pool = WorkerPool(server.url, QUEUE, base / "workers", plan.concurrency,
                          plan.lease_seconds)  # fmt: skip
        attack = Attack(pool, server, plan)
        try:
            keep = plan.jobs * 2
            await q.configure(keep_completed=keep, keep_failed=keep, keep_cancelled=keep)
            pool.workdir.mkdir(parents=True, exist_ok=True)
            for i in range(1, plan.workers):
                pool.start(f"w{i}")
            pool.start("stopped")
            producer = Producer(q, client, plan)
            producing = asyncio.create_task(producer.run(specs, until))
            await attack.run(q, producer, until)
            producing.cancel()
            await asyncio.gather(producing, return_exceptions=True)
            if "resumed" not in attack.pause and attack.pause:
                pool.resume("stopped")
            elapsed = time.monotonic() - started
            ids = producer.ids
            records = await _records(q, ids)
            stats = await q.stats(60)
        finally:
            pool.close()
            await client.aclose()
            server.stop()
        runs = tally.read_runs(pool.tally_dir)
        logs = tally.read_logs(sorted(pool.workdir.glob("*.log")))
        figures = tally.account(ids, records, runs, logs, attack.kills)
    return {
        "plan": {**asdict(plan), "stop_for": plan.stop_for},
        "seconds": round(elapsed, 1),
        "timed_out": elapsed >= plan.deadline,
        "unsubmitted": plan.jobs - len(ids),
        "submit_errors": producer.errors,
        "meant_to_dead_letter": meant_to_die,
        "figures": figures,
        "worker_kills": len(attack.kills),
        "recovery_after_worker_kill": _recovery(runs, attack.kills),
        "paused_worker": {
            **_paused_jobs(runs, attack.pause),
            "paused_seconds": attack.pause.get("resumed", 0) - attack.pause.get("at", 0),
        },
        "redis": _redis_figures(producer, records, attack.crash),
        "stats_counts": {
            "completed": stats.completed,
            "failed": stats.failed,
            "cancelled": stats.cancelled,
        },
    }
