"""Several thousand jobs through real worker processes while the run is attacked: job records
corrupted at random, event loops stalled past their lease, a worker killed with -9 while its
completions and take-next leases are in flight, cancels. Every job must end in exactly one
terminal state, no index may hold a job in the wrong state, the surviving workers keep
running, and ``jobq stats`` must count what the records say."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from jobqueue.client import AsyncQueue
from jobqueue.models import FINISHED_STATES
from jobqueue.protocol import QueueKeys
from worker_waits import wait_until

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(600)]

HERE = Path(__file__).parent
QUEUE = "chaos"
JOBS = 3000
STATE_INDEXES = ("queued", "delayed", "active", "completed", "failed", "cancelled")
CORRUPTIBLE = {
    "token": "x", "attempts": "many", "max_attempts": "0", "priority": "urgent",
    "timeout": "soon", "name": "", "state": "garbage", "payload": "{broken", "backoff": "never",
}  # fmt: skip
# Corrupt a job only while it is queued (atomically): a job that finished is out of bounds,
# since damaging its record then would only test the damage.
CORRUPT_IF_QUEUED = """
if redis.call('HGET', KEYS[1], 'state') ~= 'queued' then return 0 end
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
"""


class Workers:
    def __init__(self, redis_url: str, log_dir: Path) -> None:
        self.redis_url, self.log_dir = redis_url, log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        env = {
            **os.environ, "JOBQUEUE_REDIS_URL": self.redis_url, "JOBQUEUE_WORKER_NAME": name,
            "JOBQUEUE_METRICS_PORT": "0",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
        }  # fmt: skip
        log = (self.log_dir / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "jobqueue.cli", "worker", QUEUE, "--handlers",
             "jq_test_handlers", "--concurrency", "8", "--lease", "2"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def grep(self, text: str) -> list[str]:
        return [
            line for name in self.procs for line in self.log(name).splitlines() if text in line
        ][:40]

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)


def plan(rng: random.Random) -> list[dict[str, Any]]:
    """The job mix: mostly quick jobs, some retried, some dead, some slow, a few that stall
    their worker's event loop past the lease."""
    specs: list[dict[str, Any]] = []
    for i in range(JOBS):
        roll = rng.random()
        if i % 600 == 5:
            spec: dict[str, Any] = {"name": "test.stall", "payload": {"seconds": 3}}
        elif roll < 0.05:
            spec = {"name": "debug.fail", "payload": {"fail_attempts": 1}, "backoff": "fixed:0.2"}
        elif roll < 0.08:
            spec = {"name": "debug.fail", "payload": {"permanent": True}}
        elif roll < 0.10:
            spec = {"name": "debug.sleep", "payload": {"seconds": 1, "steps": 4}}
        else:
            spec = {"name": "test.echo_after", "payload": {"i": i, "ms": 10},
                    "priority": rng.randrange(10)}  # fmt: skip
            if roll > 0.97:
                spec["delay"] = 1.0
        specs.append(spec)
    return specs


@pytest.fixture
def workers(redis_url: str, tmp_path: Path) -> Any:
    pool = Workers(redis_url, tmp_path)
    yield pool
    pool.close()


@pytest.mark.long
async def test_every_job_ends_once_under_corruption_stalls_and_kill_9(
    redis_url: str, workers: Workers
) -> None:
    rng = random.Random(11)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    q = AsyncQueue(QUEUE, redis=client)
    keys = QueueKeys(QUEUE)
    await q.configure(max_lease_lapses=20)  # faults here lapse leases often; none may die of it
    specs = plan(rng)
    workers.start("a")
    workers.start("b")
    ids: list[str] = []
    for start in range(0, JOBS, 500):
        ids += await q.submit_many(specs[start : start + 500])
    kind = dict(zip(ids, specs, strict=True))
    corrupt = client.register_script(CORRUPT_IF_QUEUED)
    corrupted: dict[str, str] = {}
    cancelled: set[str] = set()

    async def corrupter() -> None:
        while len(corrupted) < 60:
            queued = await client.zrandmember(keys.queued, 5)
            for jid in queued or []:
                field = rng.choice(sorted(CORRUPTIBLE))
                if jid not in corrupted and await corrupt(
                    [keys.job(jid)], [field, CORRUPTIBLE[field]]
                ):
                    corrupted[jid] = field
            await asyncio.sleep(0.01)

    async def canceller() -> None:
        slow = [jid for jid in ids if kind[jid]["name"] == "debug.sleep"]
        for jid in rng.sample(slow, min(30, len(slow))):
            with contextlib.suppress(Exception):  # a corrupted state refuses a cancel
                await q.cancel(jid)
                cancelled.add(jid)
            await asyncio.sleep(0.02)

    async def finished() -> int:
        snap = await q.protocol.stats(60)
        return snap.completed + snap.failed + snap.cancelled

    chaos = [asyncio.create_task(corrupter()), asyncio.create_task(canceller())]
    try:
        # kill -9 worker a in the thick of it: completions batched, next jobs leased with them
        await wait_until(lambda: _at_least(finished, JOBS // 4), within=240)
        workers.procs["a"].send_signal(signal.SIGKILL)
        workers.procs["a"].wait(timeout=30)
        workers.start("c")

        async def all_done() -> bool:
            snap = await q.protocol.stats(60)
            return snap.queued + snap.active + snap.delayed == 0 and (
                snap.completed + snap.failed + snap.cancelled == JOBS
            )

        await wait_until(all_done, within=400, every=0.2)
    finally:
        for task in chaos:
            task.cancel()
        await asyncio.gather(*chaos, return_exceptions=True)

    # every job in exactly one index, the index its record names, a terminal one
    members = {state: set(await client.zrange(keys.key(state), 0, -1)) for state in STATE_INDEXES}
    records = await q.protocol.get_many_fields(ids)
    states: Counter[str] = Counter()
    for jid, fields in zip(ids, records, strict=True):
        where = [state for state, found in members.items() if jid in found]
        assert where == [fields.get("state")], (jid, where, fields.get("state"), corrupted.get(jid))
        assert fields["state"] in FINISHED_STATES, (jid, fields["state"])
        states[fields["state"]] += 1
        if jid in corrupted:
            assert fields["state"] == "cancelled" or (
                fields["state"] == "failed" and "MalformedJobRecord" in fields["error"]
            ), (jid, corrupted[jid], fields)
            continue
        spec = kind[jid]
        if spec["name"] == "test.echo_after":
            assert fields["state"] == "completed", (jid, fields)
            assert json.loads(fields["result"]) == spec["payload"]
        elif spec["name"] == "test.stall" or spec["payload"].get("fail_attempts"):
            assert fields["state"] == "completed", (jid, fields)
        elif spec["payload"].get("permanent"):
            assert fields["state"] == "failed" and "PermanentJobError" in fields["error"]
        elif jid not in cancelled:
            assert fields["state"] == "completed", (jid, fields, workers.grep(jid))
    assert sum(states.values()) == JOBS
    # the faults really happened
    assert len(corrupted) >= 30
    lapsed = [f for f in records if int(f.get("lapses") or 0) > 0]
    assert lapsed, "no lease lapsed: neither the kill nor the stalls hit a job in flight"
    # the surviving workers keep running, and the statistics count what the records say
    assert workers.procs["b"].poll() is None, workers.log("b")
    assert workers.procs["c"].poll() is None, workers.log("c")
    shown = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "jobqueue.cli", "--redis", redis_url, "stats", QUEUE, "--json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    stats = json.loads(shown.stdout)
    assert {s: stats[s] for s in ("completed", "failed", "cancelled")} == {
        s: states[s] for s in ("completed", "failed", "cancelled")
    }
    assert (stats["queued"], stats["active"], stats["delayed"]) == (0, 0, 0)
    await client.aclose()


async def _at_least(count: Any, target: int) -> bool:
    return bool(await count() >= target)
