"""Loading of the Lua scripts: each lives in lua/<name>.lua; lua/_lib.lua is prepended."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

__all__ = ["SCRIPT_NAMES", "script_sha", "script_source"]

SCRIPT_NAMES: tuple[str, ...] = (
    "submit",
    "take",
    "complete",
    "fail",
    "renew",
    "progress",
    "release",
    "cancel",
    "retry",
    "cleanup",
    "reap",
    "snapshot",
    "heartbeat",
    "unregister",
    "stats",
)


def _read(name: str) -> str:
    return (resources.files("jobqueue.protocol") / "lua" / f"{name}.lua").read_text("utf-8")


@cache
def script_source(name: str) -> str:
    """Full source of a script: the shared prologue followed by the script's own body."""
    if name not in SCRIPT_NAMES:
        raise KeyError(f"unknown script {name!r}")
    return _read("_lib") + "\n" + _read(name)


@cache
def script_sha(name: str) -> str:
    """SHA1 digest of a script's full source, as EVALSHA expects."""
    return hashlib.sha1(script_source(name).encode("utf-8")).hexdigest()
