"""Our connections write a command without a task per command, and still time out a write
to a peer that stopped reading (jobqueue.packing._DirectWrite)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
from jobqueue.connection import connect
from jobqueue.packing import HiredisConnection
from redis.asyncio import Redis
from redis.exceptions import TimeoutError as RedisTimeoutError


async def test_commands_are_written_without_a_task_each(redis_url: str) -> None:
    client = connect(redis_url)
    assert isinstance(client, Redis)
    loop = asyncio.get_running_loop()
    made: list[object] = []
    default_factory = loop.get_task_factory()

    def counting_factory(loop: asyncio.AbstractEventLoop, coro: object, **kw: object) -> object:
        made.append(coro)
        if default_factory is not None:
            return default_factory(loop, coro, **kw)  # type: ignore[arg-type]
        return asyncio.Task(coro, loop=loop, **kw)  # type: ignore[arg-type]

    try:
        await client.ping()  # connects (its handshake may use tasks)
        assert client.connection_pool.connection_kwargs["socket_timeout"]  # the timed path
        loop.set_task_factory(counting_factory)  # type: ignore[arg-type]
        for _ in range(50):
            assert await client.ping()
        assert await client.evalsha(await client.script_load("return 7"), 0) == 7
    finally:
        loop.set_task_factory(default_factory)
        await client.aclose()
    assert len(made) <= 2, made  # redis-py's wait_for made one per command


@pytest.fixture
def silent_peer() -> Iterator[int]:
    """A loopback server that accepts and never reads: its buffers fill, then writes stall."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


async def test_a_write_to_a_peer_that_stopped_reading_times_out(silent_peer: int) -> None:
    # no HELLO/CLIENT handshake (a plain function in its place): the peer never answers
    conn = HiredisConnection(
        host="127.0.0.1", port=silent_peer, socket_timeout=0.5, redis_connect_func=lambda c: None
    )
    await conn.connect_check_health(check_health=False, retry_socket_connect=False)
    big = conn.pack_command("SET", "k", "x" * (64 * 1024 * 1024))  # far past socket buffers
    try:
        with pytest.raises(RedisTimeoutError, match="writing"):
            await asyncio.wait_for(conn.send_packed_command(big, check_health=False), 60)
        assert not conn.is_connected  # half a command went out: the connection is dropped
    finally:
        await conn.disconnect()
