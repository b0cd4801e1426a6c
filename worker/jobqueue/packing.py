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

from redis.asyncio.connection import AbstractConnection, Connection, SSLConnection
from redis.asyncio.connection import UnixDomainSocketConnection as UnixConnection
from redis.connection import HiredisRespSerializer
from redis.utils import HIREDIS_AVAILABLE

__all__ = ["packing_class"]

_SERIALIZER = HiredisRespSerializer()


class _HiredisPacking:
    def pack_command(self, *args: Any) -> list[bytes]:
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
