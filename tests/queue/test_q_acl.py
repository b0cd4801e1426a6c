"""The documented least ACL per role (jobqueue.acl), on a real redis-server: each role does its
whole job with exactly those rules, and a queue's users cannot touch another queue's keys."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from jobqueue.acl import SCRIPT_COMMANDS, Role, acl_line, acl_rules
from jobqueue.client import AsyncQueue
from jobqueue.connection import connect
from jobqueue.protocol import QueueKeys, QueueProtocol
from jobqueue.stats import StatsReader
from jobqueue_operator.sources.jobqueue import JobQueueSource, RedisPools
from jobqueue_operator.spec import QueueSettingsSpec
from redis.exceptions import NoPermissionError, ResponseError

pytestmark = pytest.mark.redis

LUA = Path(__file__).resolve().parents[2] / "worker" / "jobqueue" / "protocol" / "lua"
USERS = {
    "producer-a": (Role.PRODUCER, ["alpha"]),
    "worker-a": (Role.WORKER, ["alpha"]),
    "producer-b": (Role.PRODUCER, ["beta"]),
    "operator": (Role.OPERATOR, []),
    "operator-sched": (Role.OPERATOR, []),
}


def as_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=f"{user}:pw-{user}@{parts.netloc}").geturl()


@pytest.fixture
def acl_users(redis_url: str) -> Iterator[str]:
    with redis.Redis.from_url(redis_url) as admin:
        for user, (role, queues) in USERS.items():
            rules = acl_rules(role, queues, schedules=user.endswith("-sched"))
            admin.execute_command("ACL", "SETUSER", user, "reset", "on", f">pw-{user}", *rules)
        try:
            yield redis_url
        finally:
            for user in USERS:
                admin.execute_command("ACL", "DELUSER", user)


def test_the_scripts_need_exactly_the_commands_granted_for_them() -> None:
    called = set()
    for script in LUA.glob("*.lua"):
        called |= {c.lower() for c in re.findall(r"redis\.p?call\('(\w+)'", script.read_text())}
    assert called == set(SCRIPT_COMMANDS)


def test_an_acl_file_line_per_role() -> None:
    line = acl_line("jobs-emails", "worker", ["emails"])
    assert line.startswith("user jobs-emails on ><password> resetkeys resetchannels -@all ")
    assert "~{jq:emails}:* ~jq:queues &jq:wakeups &{jq:emails}:cancels" in line
    assert "+bzpopmin" in line and "+@all" not in line and "+eval " not in line
    assert "(+hset ~{jq:*}:settings)" in acl_line("op", "operator")
    with pytest.raises(ValueError, match="need the queues"):
        acl_rules("producer")
    # glob characters in a queue name match only themselves
    assert "~{jq:a\\*b}:*" in acl_rules("worker", ["a*b"])


async def test_a_producer_and_a_worker_do_their_whole_job(acl_users: str) -> None:
    async with AsyncQueue("alpha", as_user(acl_users, "producer-a")) as q:
        ids = await q.submit_many([{"name": "debug.echo", "payload": i} for i in range(5)])
        doomed = await q.submit("debug.sleep", {"seconds": 60})
        url = as_user(acl_users, "worker-a")
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "jobqueue.cli", "--redis", url, "worker", "alpha",
            "--concurrency", "8", env={**os.environ, "JOBQUEUE_METRICS_PORT": "0"},
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            jobs = [await q.wait(job_id, timeout=60) for job_id in ids]
            assert [j.result for j in jobs] == list(range(5))
            await _until_active(q, doomed)
            await q.cancel(doomed)  # reaches the worker through its cancel channel
            assert (await q.wait(doomed, timeout=60)).state.value == "cancelled"
            assert [s.queue for s in await _queues(q)] == ["alpha"]
        finally:
            worker.terminate()
            _, raw = await asyncio.wait_for(worker.communicate(), 60)
        err = raw.decode()
        assert worker.returncode == 0, err
        assert "NOPERM" not in err and "permission" not in err.lower(), err


async def test_a_queues_users_cannot_touch_another_queues_keys(acl_users: str) -> None:
    async with AsyncQueue("beta", as_user(acl_users, "producer-b")) as beta:
        beta_job = await beta.submit("debug.echo", "mine")
    for user in ("producer-a", "worker-a"):
        client = connect(as_user(acl_users, user))
        try:
            with pytest.raises(NoPermissionError):
                await AsyncQueue("beta", redis=client).submit("debug.echo", "theirs")
            with pytest.raises(NoPermissionError):
                await QueueProtocol(client, "beta").take("thief", 10, 30)
            with pytest.raises(NoPermissionError):
                await client.hgetall(QueueKeys("beta").job(beta_job))
            with pytest.raises(NoPermissionError):
                await client.delete(QueueKeys("beta").queued)
            with pytest.raises(NoPermissionError):
                await client.keys("*")
            with pytest.raises(NoPermissionError):
                await client.flushall()
            with pytest.raises(NoPermissionError):  # not even through a script of its own
                await client.eval("return redis.call('DEL', KEYS[1])", 1, QueueKeys("beta").queued)
        finally:
            await client.aclose()
    async with AsyncQueue("beta", acl_users) as beta:
        assert (await beta.get(beta_job)).state.value == "queued"


async def test_a_producer_made_before_incrby_submits_one_by_one_and_a_bulk_is_refused_whole(
    redis_url: str,
) -> None:
    # What `docs/redis.md` promises a user whose ACL predates the bulk submit's INCRBY.
    old_rules = [r for r in acl_rules(Role.PRODUCER, ["gamma"]) if r != "+incrby"]
    assert len(old_rules) == len(acl_rules(Role.PRODUCER, ["gamma"])) - 1
    with redis.Redis.from_url(redis_url) as admin:
        admin.execute_command("ACL", "SETUSER", "old", "reset", "on", ">pw-old", *old_rules)
        try:
            async with AsyncQueue("gamma", as_user(redis_url, "old")) as q:
                await q.submit("debug.echo", 1)
                await q.submit_many([{"name": "debug.echo", "payload": 2}])
                with pytest.raises(ResponseError, match="can't run this command"):
                    await q.submit_many([{"name": "debug.echo", "payload": i} for i in range(3)])
                assert await q.redis.zcard(QueueKeys("gamma").queued) == 2
        finally:
            admin.execute_command("ACL", "DELUSER", "old")


async def test_the_operator_reads_every_queue_and_writes_only_settings(acl_users: str) -> None:
    for name in ("alpha", "beta"):
        async with AsyncQueue(name, as_user(acl_users, f"producer-{name[0]}")) as q:
            await q.submit("debug.echo")
    url = as_user(acl_users, "operator")
    pools = RedisPools()
    sources = [JobQueueSource(pools, url, name) for name in ("alpha", "beta")]
    try:
        assert [(await s.read()).metrics.queued for s in sources] == [1, 1]
        assert (await sources[0].read()).redis_problem is None  # INFO memory is allowed
        settings = QueueSettingsSpec.model_validate({"keepCompleted": 3}).to_queue_settings()
        await sources[1].configure(settings)
    finally:
        for source in sources:
            await source.close()
    client = connect(url)
    try:
        with pytest.raises(
            ResponseError, match=r"NOPERM|can't (run|access)|no permissions"
        ):  # a script that writes
            await AsyncQueue("alpha", redis=client).submit("debug.echo")
        job_id = (await client.zrange(QueueKeys("alpha").queued, 0, 0))[0]
        with pytest.raises(NoPermissionError):
            await client.hset(QueueKeys("alpha").job(job_id), "state", "completed")
        with pytest.raises(NoPermissionError):
            await client.zrem(QueueKeys("alpha").queued, job_id)
        assert (await StatsReader(client, "alpha").read()).queued == 1
    finally:
        await client.aclose()


async def _until_active(q: AsyncQueue, job_id: str) -> None:
    from waits import wait_until

    async def active() -> bool:
        return (await q.get(job_id)).state.value == "active"

    await wait_until(active, within=60)


async def _queues(q: AsyncQueue) -> list[object]:
    from jobqueue.client import list_queues

    names = await list_queues(q.redis)
    return [await q.stats() for _ in names]


def test_the_documented_acl_lines_are_the_ones_made_here() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "redis.md").read_text()
    for line in (
        acl_line("jobs-emails-producer", "producer", ["emails"]),
        acl_line("jobs-emails-worker", "worker", ["emails"]),
        acl_line("jobqueue-operator", "operator"),
    ):
        assert line in doc


async def test_schedules_fire_for_their_queues_users_and_an_operator_allowed_them(
    acl_users: str,
) -> None:
    async with AsyncQueue("alpha", as_user(acl_users, "producer-a")) as q:
        await q.add_schedule("often", "debug.echo", every=1)
        assert [s.schedule.name for s in await q.schedules()] == ["often"]
    for user, allowed in (("operator", False), ("operator-sched", True)):
        client = connect(as_user(acl_users, user))
        try:
            aq = AsyncQueue("alpha", redis=client)
            assert [s.schedule.name for s in await aq.schedules()] == ["often"]  # reads: yes
            if allowed:
                await _until_fired(aq)
            else:
                with pytest.raises(
                    ResponseError, match=r"NOPERM|can't (run|access)|no permissions"
                ):
                    await _until_fired(aq)
        finally:
            await client.aclose()


async def _until_fired(q: AsyncQueue) -> None:
    from waits import wait_until

    async def fired() -> bool:
        return bool((await q.fire_due_schedules()).fired)

    await wait_until(fired, within=10)
