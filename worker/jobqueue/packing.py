"""Connections that pack commands with hiredis (C) instead of redis-py's pure-Python packer.

redis-py's sync client packs with hiredis when it is installed; its asyncio client does not
yet (redis/redis-py#4176) and builds each command in Python: about 40 us for a submit's EVALSHA
on the benchmark machine against 4 us with hiredis (bench/README.md, "Where the time per job
goes"). These classes reuse redis-py's own hiredis serializer, which yields the same bytes and
raises DataError for the same unsupported argument types (None, bool). It encodes text as
UTF-8 strictly, so ``packing_class`` returns them only for that encoding (redis-py's default).
"""

from __future__ import annotations

from typing import Any

import hiredis
from redis.asyncio.connection import AbstractConnection, Connection, SSLConnection
from redis.asyncio.connection import UnixDomainSocketConnection as UnixConnection
from redis.connection import HiredisRespSerializer
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


class HiredisConnection(_HiredisPacking, Connection):
    """TCP."""


class HiredisSSLConnection(_HiredisPacking, SSLConnection):
    """TLS."""


class HiredisUnixConnection(_HiredisPacking, UnixConnection):
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
