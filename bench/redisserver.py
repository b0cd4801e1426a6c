"""A throwaway redis-server on a free port, shared by every system in one benchmark run."""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hack"))
from redisproc import REDIS_SERVER, RedisProcess, free_port

__all__ = ["REDIS_SERVER", "RedisProcess", "free_port", "redis_server"]


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """Start redis-server without persistence; yield its URL; stop it on exit."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-redis-") as workdir,
        RedisProcess(Path(workdir), extra=("--maxclients", "4000")) as server,
    ):
        yield server.url
