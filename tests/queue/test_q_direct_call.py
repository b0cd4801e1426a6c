"""Script calls and a worker's wait-then-take go around redis-py's per-command wrapper and
pipeline (jobqueue.direct) and keep what those gave them: a dropped connection fails its call
and is made anew, a cancelled wait leaves nothing on its connection, and the clients it does
not cover (a single-connection client) take redis-py's own path."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from jobqueue.connection import connect
from jobqueue.models import build_spec
from jobqueue.protocol import QueueProtocol, wait_then_take
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from waits import wait_until


@pytest.fixture
def executed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the commands that went through ``Redis.execute_command``."""
    names: list[str] = []
    original = aioredis.Redis.execute_command

    async def counting(self: aioredis.Redis, *args: Any, **options: Any) -> Any:
        names.append(str(args[0]).upper())
        return await original(self, *args, **options)

    monkeypatch.setattr(aioredis.Redis, "execute_command", counting)
    yield names


async def test_script_calls_go_around_execute_command(redis_url: str, executed: list[str]) -> None:
    client = connect(redis_url)
    try:
        proto = QueueProtocol(client, "direct")
        for i in range(3):
            assert (await proto.submit(build_spec("job"), f"d{i}"))[1]
        assert len(await proto.take("w", 3, 30)) == 3
    finally:
        await client.aclose()
    # only the queue's one-time SADD (and loading the scripts, when the server lacks them)
    assert "EVALSHA" not in executed and set(executed) <= {"SADD", "SCRIPT LOAD"}, executed


async def test_a_connection_the_server_dropped_fails_one_call_and_is_made_anew(
    redis_url: str, rclient: aioredis.Redis
) -> None:
    """A guard: as on redis-py's path (our connections retry nothing: a script call is not
    sent twice), the call on the dead connection raises ConnectionError and drops it, and
    the next call connects anew."""
    client = connect(redis_url)
    try:
        proto = QueueProtocol(client, "dropped")
        await proto.submit(build_spec("job"), "before")
        pooled = await client.client_id()  # the pool's one connection, used again next
        assert await rclient.client_kill_filter(_id=pooled) == 1
        with pytest.raises(RedisConnectionError):
            await proto.submit(build_spec("job"), "lost")
        assert await proto.submit(build_spec("job"), "after") == ("after", True)
    finally:
        await client.aclose()
    assert await rclient.exists("{jq:dropped}:job:lost") == 0
    assert await rclient.hget("{jq:dropped}:job:after", "state") == "queued"


async def test_a_single_connection_client_takes_redis_pys_own_path(
    redis_url: str, executed: list[str]
) -> None:
    client = aioredis.Redis.from_url(
        redis_url, decode_responses=True, single_connection_client=True
    )
    try:
        proto = QueueProtocol(client, "single")
        assert await proto.take("w", 1, 30) == []  # its first command: no connection made yet
        taking = executed.count("EVALSHA")
        assert taking >= 1, executed  # (twice when the server had to load the script)
        assert await proto.submit(build_spec("job"), "s1") == ("s1", True)
    finally:
        await client.aclose()
    assert executed.count("EVALSHA") > taking


async def _blocked(rclient: aioredis.Redis) -> bool:
    return int((await rclient.info("clients"))["blocked_clients"]) >= 1


async def test_the_wait_then_take_goes_around_redis_pys_pipeline(
    redis_url: str, rclient: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipelines: list[int] = []
    original = Pipeline.execute

    async def counting(self: Pipeline, *args: Any, **options: Any) -> Any:
        pipelines.append(len(self.command_stack))
        return await original(self, *args, **options)

    monkeypatch.setattr(Pipeline, "execute", counting)
    client = connect(redis_url)
    try:
        waiter = QueueProtocol(client, "waits")
        waiting = asyncio.create_task(wait_then_take([waiter], "w", 1, 30, 10))
        await wait_until(lambda: _blocked(rclient))
        await QueueProtocol(rclient, "waits").submit(build_spec("job"), "woke")
        jobs = await asyncio.wait_for(waiting, 10)
    finally:
        await client.aclose()
    assert jobs is not None and [job.id for job in jobs] == ["woke"]
    assert pipelines == []


async def test_a_wait_cancelled_while_it_blocks_leaves_no_reply_for_the_next_call(
    redis_url: str, rclient: aioredis.Redis
) -> None:
    """A guard: the cancelled read drops its connection (as redis-py's read does), so the
    BZPOPMIN and take replies still due on it never reach the next call."""
    client = connect(redis_url)
    try:
        waiter = QueueProtocol(client, "cancelled")
        waiting = asyncio.create_task(wait_then_take([waiter], "w", 1, 30, 10))
        await wait_until(lambda: _blocked(rclient))
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert await waiter.submit(build_spec("job"), "next") == ("next", True)
        assert [job.id for job in await waiter.take("w", 1, 30)] == ["next"]
    finally:
        await client.aclose()
