"""Run 4: ours, BullMQ (Node.js and the Python port) and Celery side by side under the same
kill loop.

The same jobs (mixed lengths) go to each system on a fresh redis-server; ``workers`` worker
processes at ``concurrency`` run them while one is SIGKILLed every ``kill_every`` seconds
(and replaced) for ``kill_for`` seconds; then nothing is killed any more and each system gets
``settle`` seconds to finish everything. Every system runs with its own defaults for crash
recovery (ours: lease 30 s; BullMQ: lock 30 s, stalled check every 30 s, a job stalled more
than once fails; Celery: ``task_acks_late=True``, unacknowledged messages come back after the
Redis transport's visibility timeout, 1 hour), so the figures show what a user of each gets.
BullMQ runs twice: on Node.js (bench/node/chaos.mjs, the library as most of its users run it)
and as its Python port (the same Lua scripts).

Figures per system: jobs, finished (the handler returned at least once), failed by the
system, unfinished when the run ends, jobs run more than once, and when the last job
finished, counted from the end of the kill loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from jobqueue.client import AsyncQueue
from jobqueue.protocol import QueueKeys

from bench.chaos import tally
from bench.chaos.workers import REPO, WorkerPool
from bench.redisserver import RedisProcess

QUEUE = "peers"
SYSTEMS = ("jobqueue", "bullmq-node", "bullmq", "celery")
NODE_SCRIPT = REPO / "bench" / "node" / "chaos.mjs"


@dataclass(frozen=True)
class Plan:
    jobs: int = 5_000
    workers: int = 3
    concurrency: int = 8
    kill_every: float = 3.0
    kill_for: float = 60.0
    settle: float = 150.0
    seed: int = 18


FULL = Plan()
QUICK = Plan(jobs=1_000, kill_for=20.0, settle=90.0)


def payloads(plan: Plan) -> list[dict[str, Any]]:
    rng = random.Random(plan.seed)
    out = []
    for i in range(plan.jobs):
        roll = rng.random()
        ms = rng.uniform(0, 5) if roll < 0.75 else rng.uniform(10, 100) if roll < 0.92 else (
            rng.uniform(500, 3_000)
        )  # fmt: skip
        out.append({"i": i, "ms": round(ms, 2)})
    return out


class System:
    """Enqueue, a worker's argv, and what counts as done, per system."""

    def __init__(self, name: str, url: str, python: Path, base: Path) -> None:
        self.name, self.url, self.python, self.base = name, url, python, base
        self.ids: dict[str, str] = {}  # tally job key -> seq (ours: job id -> seq)

    def command(self, plan: Plan) -> list[str] | None:
        if self.name == "jobqueue":
            return None  # WorkerPool's own `jobq worker`
        if self.name == "bullmq-node":
            return ["node", str(NODE_SCRIPT), "worker", "--url", self.url, "--queue", QUEUE,
                    "--concurrency", str(plan.concurrency)]  # fmt: skip
        return [str(self.python), "-m", "bench.chaos.peer_workers", "worker", "--system",
                self.name, "--url", self.url, "--queue", QUEUE, "--concurrency",
                str(plan.concurrency)]  # fmt: skip

    async def enqueue(self, jobs: list[dict[str, Any]]) -> None:
        if self.name == "jobqueue":
            async with AsyncQueue.from_url(self.url, QUEUE) as q:
                for start in range(0, len(jobs), 500):
                    chunk = jobs[start : start + 500]
                    specs = [{"name": "chaos.run", "payload": p} for p in chunk]
                    ids = await q.submit_many(specs)
                    self.ids.update({jid: str(p["i"]) for jid, p in zip(ids, chunk, strict=True)})
            return
        plan_file = self.base / "payloads.json"
        plan_file.write_text(json.dumps(jobs))
        common = ["--url", self.url, "--queue", QUEUE, "--plan", str(plan_file)]
        if self.name == "bullmq-node":
            argv = ["node", str(NODE_SCRIPT), "enqueue", *common]
        else:
            argv = [str(self.python), "-m", "bench.chaos.peer_workers", "enqueue", "--system",
                    self.name, *common]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = await asyncio.create_subprocess_exec(*argv, env=env)
        if await asyncio.wait_for(proc.wait(), 600) != 0:
            raise RuntimeError(f"{self.name}: enqueue failed")

    def seq(self, key: str) -> str:
        return self.ids.get(key, key)

    async def failed(self, client: aioredis.Redis) -> int:
        """Jobs the system itself gave up on (terminal without success)."""
        if self.name == "jobqueue":
            return int(await client.zcard(QueueKeys(QUEUE).key("failed")) or 0)
        if self.name.startswith("bullmq"):
            return int(await client.zcard(f"bull:{QUEUE}:failed") or 0)
        return 0


async def _one(name: str, plan: Plan, python: Path, base: Path) -> dict[str, Any]:
    jobs = payloads(plan)
    server = RedisProcess(base / "redis").start()
    system = System(name, server.url, python, base)
    pool = WorkerPool(server.url, QUEUE, base / "workers", plan.concurrency, 30.0,
                      command=system.command(plan))  # fmt: skip
    pool.workdir.mkdir(parents=True, exist_ok=True)
    client = aioredis.Redis.from_url(server.url, decode_responses=True)
    rng = random.Random(plan.seed + 7)
    kills = 0

    def finished() -> tuple[set[str], dict[str, set[str]]]:
        runs = tally.read_runs(pool.tally_dir)
        done = {system.seq(k) for k, rs in runs.items() if any(r.mark == "E" for r in rs)}
        tokens = {system.seq(k): {r.token for r in rs if r.mark == "S"} for k, rs in runs.items()}
        return done, tokens

    try:
        await system.enqueue(jobs)
        for i in range(plan.workers):
            pool.start(f"w{i + 1}")
        spawned = plan.workers
        loop_end = time.monotonic() + plan.kill_for
        while time.monotonic() < loop_end:
            await asyncio.sleep(plan.kill_every)
            pool.kill(rng.choice(pool.running()))
            kills += 1
            spawned += 1
            pool.start(f"w{spawned}")
        kill_loop_ended = time.monotonic()
        last_done: float | None = None
        while time.monotonic() < kill_loop_ended + plan.settle:
            done, _ = finished()
            if len(done) + await system.failed(client) >= plan.jobs:
                last_done = time.monotonic() - kill_loop_ended
                break
            await asyncio.sleep(1.0)
        done, tokens = finished()
        failed = await system.failed(client)
    finally:
        pool.close()
        await client.aclose()
        server.stop()
    return {
        "jobs": plan.jobs,
        "finished": len(done),
        "failed_by_system": failed,
        "unfinished": plan.jobs - len(done) - failed,
        "ran_more_than_once": sum(1 for t in tokens.values() if len(t) > 1),
        "kills": kills,
        "all_done_after_kill_loop_seconds": None if last_done is None else round(last_done, 1),
    }


def run(plan: Plan, workdir: Path | None = None) -> dict[str, Any]:
    from bench.venv import ensure_node, ensure_venv

    python, message = ensure_venv()
    if python is None:
        return {"skipped": message}
    node_missing = ensure_node()
    results: dict[str, Any] = {"plan": asdict(plan), "systems": {}}
    with tempfile.TemporaryDirectory(prefix="chaos-peers-") as tmp:
        base = workdir or Path(tmp)
        for name in SYSTEMS:
            print(f"chaos peers: {name}", flush=True)
            (base / name).mkdir(parents=True, exist_ok=True)
            if name == "bullmq-node" and node_missing:
                results["systems"][name] = {"error": node_missing}
                continue
            try:
                results["systems"][name] = asyncio.run(_one(name, plan, python, base / name))
            except Exception as exc:  # one system failing is a row, not a failed run
                results["systems"][name] = {"error": f"{type(exc).__name__}: {exc}"}
    return results
