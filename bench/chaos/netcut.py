"""Run 2: a worker cut off from Redis (network namespace) for longer than its lease, and back.

Redis runs in a namespace of its own; worker ``cut`` runs in another, joined to it by a veth
pair (``netns.py``); the benchmark and worker ``good`` reach Redis from the host's namespace.

1. ``cut`` takes every job (half of them outlast the cut, half end during it); then its
   link goes down (packets dropped, connections left open: a partition).
2. ``good`` starts; the leases of ``cut`` lapse and ``good`` runs every job again.
3. Once ``good`` has started them all and two leases have passed, the link comes back.
   Whatever ``cut`` then says about its old attempts is refused by the fencing token (a
   renewal answered "lease lost", which cancels the handler, or a completion refused).
4. ``good`` stops; new jobs prove ``cut`` works again.

Figures: jobs, lost (0), stale results accepted (0), runs per job, the cut's length, how
``cut``'s attempts ended, the time until the jobs ran elsewhere and until ``cut`` took
work again.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from jobqueue.client import AsyncQueue

from bench.chaos import netns, tally
from bench.chaos.workers import WorkerPool
from bench.redisserver import RedisProcess

QUEUE = "netcut"


@dataclass(frozen=True)
class Plan:
    jobs: int = 8
    lease_seconds: float = 3.0
    job_seconds: float = 12.0  # longer than the cut (half the jobs; the others end in it)
    deadline: float = 180.0


FULL = Plan(jobs=16)
QUICK = Plan()


async def _until(what: str, check: Callable[[], Awaitable[bool]], until: float) -> None:
    while not await check():
        if time.monotonic() > until:
            raise TimeoutError(f"netcut: timed out waiting until {what}")
        await asyncio.sleep(0.1)


async def run(plan: Plan, workdir: Path | None = None) -> dict[str, Any]:
    why_not = netns.available()
    if why_not:
        return {"skipped": why_not}
    until = time.monotonic() + plan.deadline
    with tempfile.TemporaryDirectory(prefix="chaos-netcut-") as tmp:
        base = workdir or Path(tmp)
        nets = netns.Namespaces(netns.free_index()).set_up()
        # Protected mode refuses non-loopback clients without a password; this server is
        # reachable only from namespaces made for this run.
        server = RedisProcess(base / "redis", host=nets.redis_ip, extra=("--protected-mode", "no"),
                              prefix=nets.enter(nets.redis_ns))  # fmt: skip
        pool = WorkerPool(server.url, QUEUE, base / "workers", concurrency=plan.jobs,
                          lease_seconds=plan.lease_seconds)  # fmt: skip
        try:
            server.start()
            client = aioredis.Redis.from_url(server.url, decode_responses=True)
            q = AsyncQueue(QUEUE, redis=client)
            try:
                result = await _attack(plan, q, pool, nets, until)
                ids = result.pop("ids")
                records = dict(zip(ids, await q.protocol.get_many_fields(ids), strict=True))
            finally:
                await client.aclose()
        finally:
            pool.close()
            server.stop()
            nets.tear_down()
        runs = tally.read_runs(pool.tally_dir)
        logs = tally.read_logs(sorted(pool.workdir.glob("*.log")))
    first = ids[: plan.jobs]
    figures = tally.account(first, records, runs, logs, kills={})
    on_cut = [r for j in first for r in runs.get(j, []) if r.worker == "cut" and r.mark == "S"]
    refused_cut = sum(1 for r in on_cut if (r.job_id, r.token) in logs.refused)
    abandoned_cut = sum(1 for j in first if ("cut", j) in logs.abandoned)
    ran_on = [_result_worker(records[j]) for j in first]
    return {
        "plan": asdict(plan),
        **result,
        "figures": figures,
        "attempts_on_cut_worker": len(on_cut),
        "cut_attempts_completion_refused": refused_cut,
        "cut_attempts_cancelled_on_lease_lost": abandoned_cut,
        "completed_by": {w: ran_on.count(w) for w in sorted(set(ran_on))},
        "after_restore_jobs_done_by_cut": sum(
            1 for j in ids[plan.jobs :] if _result_worker(records[j]) == "cut"
        ),
    }


def _result_worker(fields: dict[str, str]) -> str:
    return str(json.loads(fields.get("result") or "{}").get("worker"))


async def _attack(
    plan: Plan, q: AsyncQueue, pool: WorkerPool, nets: netns.Namespaces, until: float
) -> dict[str, Any]:
    pool.workdir.mkdir(parents=True, exist_ok=True)
    pool.start("cut", prefix=nets.enter(nets.worker_ns))
    # Half outlast the cut (their handlers still run when the link comes back), half end
    # during it (their completions wait in the cut socket and arrive after the link is back).
    lengths = [plan.job_seconds if i % 2 else 1.5 * plan.lease_seconds for i in range(plan.jobs)]
    ids = await q.submit_many(
        [{"name": "chaos.run", "payload": {"ms": seconds * 1000}} for seconds in lengths]
    )

    def started_on(worker: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            runs = tally.read_runs(pool.tally_dir)
            return all(any(r.worker == worker for r in runs.get(j, [])) for j in ids)

        return check

    await _until("the cut worker runs every job", started_on("cut"), until)
    nets.cut()
    cut_at = time.monotonic()
    pool.start("good")
    await _until("every job ran again on the good worker", started_on("good"), until)
    rerun_after = time.monotonic() - cut_at
    # well past the lease: the cut worker's renewals have all failed for two leases
    await asyncio.sleep(max(0.0, cut_at + 2 * plan.lease_seconds - time.monotonic()))
    nets.restore()
    cut_seconds = time.monotonic() - cut_at

    async def all_completed() -> bool:
        fields = await q.protocol.get_many_fields(ids)
        return all(f.get("state") in tally.TERMINAL for f in fields)

    await _until("every job finished", all_completed, until)
    pool.terminate("good")
    back_at = time.monotonic()
    later = await q.submit_many([{"name": "chaos.run", "payload": {"ms": 10}}] * plan.jobs)

    async def later_done() -> bool:
        fields = await q.protocol.get_many_fields(later)
        return all(f.get("state") == "completed" for f in fields)

    await _until("the cut worker ran new jobs after the link came back", later_done, until)
    return {
        "ids": [*ids, *later],
        "cut_seconds": round(cut_seconds, 2),
        "rerun_elsewhere_after_seconds": round(rerun_after, 2),
        "cut_worker_back_after_seconds": round(time.monotonic() - back_at, 2),
        "cut_worker_alive": pool.procs["cut"].poll() is None,
    }
