"""Loading of the Lua scripts: each lives in lua/<name>.lua, with lua/_lib.lua before its body.

A script's first lines declare what Redis must know before it runs it:

    --! keys: queued enqueued active journal      (every key it touches, in KEYS order)
    --! flags: no-writes                           (optional: a read-only script)

Fixed key names (``keys.FIXED_KEY_NAMES``) are the queue's own keys; any other name is a
per-call key the caller supplies after them (``journal``: a take's request journal). From the
header this module builds the full source: the shebang (so Redis 7 checks OOM and cross-slot
access before a writing script starts, and may run a no-writes one on a replica), a prologue
that names the keys (``K.queued`` is ``KEYS[1]``...) and carries the stored settings' names
and defaults (from ``QueueSettings``: one source), the library (its definitions only as far
as the script uses them: ``lualib.py``), then the body.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from jobqueue.models import QueueSettings
from jobqueue.protocol.keys import FIXED_KEY_NAMES
from jobqueue.protocol.lualib import library_for

__all__ = ["SCRIPT_NAMES", "ScriptInfo", "script_info", "script_sha", "script_source"]

SCRIPT_NAMES: tuple[str, ...] = (
    "submit",
    "take",
    "complete",
    "recover",
    "fail",
    "defer",
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
    "hint",
    "schedule",
    "fire",
    "due",
)

#: Per-call keys a script may declare after its fixed ones.
CALL_KEY_NAMES = frozenset({"journal"})


@dataclass(frozen=True)
class ScriptInfo:
    """What a script's header declares."""

    fixed_keys: tuple[str, ...]  # names from FIXED_KEY_NAMES, in KEYS order
    call_keys: tuple[str, ...]  # names the caller supplies per call, after the fixed ones
    read_only: bool


def _read(name: str) -> str:
    return (resources.files("jobqueue.protocol") / "lua" / f"{name}.lua").read_text("utf-8")


@cache
def script_info(name: str) -> ScriptInfo:
    """The keys and flags a script declares in its header."""
    if name not in SCRIPT_NAMES:
        raise KeyError(f"unknown script {name!r}")
    keys: list[str] = []
    read_only = False
    for line in _read(name).splitlines():
        if not line.startswith("--!"):
            break
        label, _, value = line[3:].partition(":")
        if label.strip() == "keys":
            keys = value.split()
        elif label.strip() == "flags":
            read_only = value.split() == ["no-writes"]
    fixed = tuple(k for k in keys if k in FIXED_KEY_NAMES)
    call = tuple(k for k in keys if k not in FIXED_KEY_NAMES)
    if not keys or keys != [*fixed, *call] or not set(call) <= CALL_KEY_NAMES:
        raise ValueError(f"lua/{name}.lua: bad '--! keys:' header {keys!r}")
    return ScriptInfo(fixed, call, read_only)


def _lua_number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def _prologue(info: ScriptInfo) -> str:
    names = [*info.fixed_keys, *info.call_keys]
    defaults = QueueSettings().model_dump()
    return "\n".join(
        [
            "#!lua flags=no-writes" if info.read_only else "#!lua",
            # one constructor: Lua sizes the table once (assigning key by key regrows it)
            "local K = { "
            + ", ".join(f"{key} = KEYS[{i}]" for i, key in enumerate(names, start=1))
            + " }",
            "setmetatable(K, { __index = function(_, name)",
            "  error('jobqueue: this script does not declare the key ' .. tostring(name)) end })",
            "local SETTING_NAMES = { "
            + ", ".join(f"'{name}'" for name in QueueSettings.stored_names())
            + " }",
            "local DEFAULTS = { "
            + ", ".join(
                f"{name} = {_lua_number(defaults[name])}" for name in QueueSettings.stored_names()
            )
            + " }",
        ]
    )


@cache
def script_source(name: str) -> str:
    """Full source of a script: shebang and prologue, the shared library, the script's body."""
    info = script_info(name)
    body = _read(name)
    return _prologue(info) + "\n" + library_for(_read("_lib"), body) + "\n" + body


@cache
def script_sha(name: str) -> str:
    """SHA1 digest of a script's full source, as EVALSHA expects."""
    return hashlib.sha1(script_source(name).encode("utf-8")).hexdigest()
