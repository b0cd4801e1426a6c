"""Connections that pack commands with hiredis (C) instead of redis-py's pure-Python packer.

redis-py's sync client packs with hiredis when it is installed; its asyncio client does not
yet (redis/redis-py#4176) and builds each command in Python: about 40 us for a submit's EVALSHA
on the benchmark machine against 4 us with hiredis (bench/README.md, "Where the time per job
goes"). These classes reuse redis-py's own hiredis serializer, which yields the same bytes and
raises DataError for the same unsupported argument types (None, bool). It encodes text as
UTF-8 strictly, so ``packing_class`` returns them only for that encoding (redis-py's default).

They also write without a task per command (``_DirectWrite``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import hiredis
from redis.asyncio.connection import AbstractConnection, Connection, SSLConnection
from redis.asyncio.connection import UnixDomainSocketConnection as UnixConnection
from redis.connection import HiredisRespSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.utils import HIREDIS_AVAILABLE

__all__ = ["packing_class"]

_SERIALIZER = HiredisRespSerializer()


class _HiredisPacking:
    def pack_command(self, *args: Any) -> list[bytes]:
        # The serializer first copies every argument through a generator (to turn bytearray
        # and memoryview into bytes): 4 us of a bulk submit's 27 per job. A one-word command
        # name of str, int, float and bytes arguments (all this package sends) goes straight
        # to hiredis, which packs them as the serializer would; anything else (a bytearray,
        # None or a bool, which the serializer refuses with DataError) takes its path.
        first = args[0]
        if type(first) is str and first.isalpha():
            try:
                return [hiredis.pack_command(args)]
            except TypeError:
                pass
        packed: list[bytes] = _SERIALIZER.pack(*args)
        return packed


class _DirectWrite(AbstractConnection):
    """redis-py writes each command under ``asyncio.wait_for`` when ``socket_timeout`` is set
    (ours is): on Python 3.11 that makes a Task, and so a turn of the event loop, per command:
    ~20 % of a round trip on loopback (bench/README.md). Handing the bytes to the transport
    never waits, and ``drain`` waits only while the transport holds more than its high-water
    mark (a peer that stopped reading): only then does the write need the timeout. Failures
    end as redis-py's own: the connection is dropped, a timeout raises TimeoutError, a socket
    error ConnectionError."""

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        writer = self._writer
        if not (self.socket_timeout and self.is_connected and writer and isinstance(command, list)):
            await super().send_packed_command(command, check_health)
            return
        if check_health:
            await self.check_health()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        try:
            writer.writelines(command)
            if writer.transport.get_write_buffer_size():  # not all sent yet: drain may wait
                async with asyncio.timeout(self.socket_timeout):
                    await writer.drain()
            else:
                await writer.drain()  # returns at once (raises if the connection was lost)
        except TimeoutError:
            await self.disconnect(nowait=True)
            raise RedisTimeoutError("Timeout writing to socket") from None
        except OSError as exc:
            await self.disconnect(nowait=True)
            raise RedisConnectionError(f"Error while writing to socket: {exc}") from exc
        except BaseException:
            await self.disconnect(nowait=True)  # half a command may be out: never reuse it
            raise


class HiredisConnection(_HiredisPacking, _DirectWrite, Connection):
    """TCP."""


class HiredisSSLConnection(_HiredisPacking, _DirectWrite, SSLConnection):
    """TLS."""


class HiredisUnixConnection(_HiredisPacking, _DirectWrite, UnixConnection):
    """A Unix domain socket."""


_PACKING = {
    Connection: HiredisConnection,
    SSLConnection: HiredisSSLConnection,
    UnixConnection: HiredisUnixConnection,
}


def packing_class(
    base: type[AbstractConnection], connection_kwargs: dict[str, Any]
) -> type[AbstractConnection]:
    """``base`` packing with hiredis when it can pack the same bytes (hiredis installed, text
    encoded as strict UTF-8); otherwise ``base`` itself."""
    utf8 = str(connection_kwargs.get("encoding", "utf-8")).lower().replace("_", "-") in (
        "utf-8",
        "utf8",
    )
    strict = connection_kwargs.get("encoding_errors", "strict") == "strict"
    if not (HIREDIS_AVAILABLE and utf8 and strict):
        return base
    return _PACKING.get(base, base)
