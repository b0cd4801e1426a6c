"""One command on a pooled connection, without redis-py's per-command wrapper.

``Redis.execute_command`` (redis-py 8) wraps every command in OpenTelemetry hooks (the
operation's duration and errors: awaited, with their lookups, on each call even when no
telemetry is set up), two closures and the response-callback lookup: 27 of the 289 Python
function calls of an awaited one-job submit, 6-10 % of its CPU (bench/README.md, round
six). ``call``
does for one command what it does, minus those: a connection from the pool, the command
sent and its reply read under the connection's own retry policy, the connection released.
Our connections retry nothing, so a script call is never sent twice: one on a connection the
server dropped raises ConnectionError and disconnects it, and the next call connects anew,
as on redis-py's path. The reply is returned as read, so ``call`` serves only commands
without a response callback (EVALSHA: the scripts' replies). Redis-py's OpenTelemetry
metrics, when set up, do not see these calls; ours (the worker's and operator's Prometheus
metrics) do.

Clients it does not cover go through ``execute_command``: a Cluster (commands are routed by
slot) and a single-connection client (its connection is shared under a lock).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeGuard

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError

from jobqueue.connection import AnyRedis

__all__ = ["call", "pipeline", "stream"]


def _covered(client: AnyRedis) -> TypeGuard[aioredis.Redis]:
    """Whether this module takes the client's connections itself: not a Cluster's (routed by
    slot) nor a single-connection client's (shared under its lock)."""
    return isinstance(client, aioredis.Redis) and not client.single_connection_client


async def call(client: AnyRedis, *args: Any) -> Any:
    """``client.execute_command(*args)`` for a command whose reply needs no callback."""
    if not _covered(client):
        return await client.execute_command(*args)
    pool = client.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
    try:

        async def send_and_read() -> Any:
            await conn.send_command(*args)
            return await conn.read_response()

        return await conn.retry.call_with_retry(send_and_read, _dropped(conn))
    finally:
        await pool.release(conn)


async def pipeline(client: AnyRedis, commands: Sequence[Sequence[Any]]) -> list[Any]:
    """``commands`` in one write, their replies read in order, as a non-transactional
    ``pipeline().execute(raise_on_error=False)`` gives them (one Redis refused comes back as
    its ResponseError in its place), for commands without a response callback. A failure
    while reading (a timeout, a cancelled wait) drops the connection, as redis-py's read
    does, so no reply is ever left for the next user of the connection."""
    if not _covered(client):
        pipe = client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute(raise_on_error=False))
    pool = client.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
    try:

        async def send_and_read() -> list[Any]:
            await conn.send_packed_command(conn.pack_commands(commands))
            return await _replies(conn, len(commands))

        replies: list[Any] = await conn.retry.call_with_retry(send_and_read, _dropped(conn))
        return replies
    finally:
        await pool.release(conn)


def _dropped(conn: AbstractConnection) -> Callable[[Exception], Awaitable[None]]:
    async def dropped(_error: Exception) -> None:
        await conn.disconnect()  # the next use connects anew

    return dropped


async def stream(client: AnyRedis, commands: Iterable[Sequence[Any]]) -> list[Any]:
    """``pipeline`` for commands made one at a time: each is written as soon as ``commands``
    yields it, and the replies are read once the last is written, so Redis runs the first
    while the caller makes the next (a bulk submit: bench/README.md, round seven). Nothing is
    retried, whatever the connection's policy: the commands cannot be made again. Any failure
    drops the connection, so no reply is ever left on it for its next user."""
    if not _covered(client):
        return await pipeline(client, list(commands))
    pool = client.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
    try:
        sent = 0
        for command in commands:
            await conn.send_packed_command(conn.pack_command(*command), check_health=not sent)
            sent += 1
        return await _replies(conn, sent)
    except BaseException:
        await conn.disconnect()
        raise
    finally:
        await pool.release(conn)


async def _replies(conn: AbstractConnection, n: int) -> list[Any]:
    """The next ``n`` replies in order; one Redis refused in its place, as its ResponseError
    (that reply is read: the rest follow)."""
    replies: list[Any] = []
    for _ in range(n):
        try:
            replies.append(await conn.read_response())
        except ResponseError as refused:
            replies.append(refused)
    return replies
