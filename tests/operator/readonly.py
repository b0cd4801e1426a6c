"""Proof that an adapter only reads: every command it sends is a read (MONITOR, checked
against the server's own COMMAND INFO flags), and the keyspace is the same before and after
(DUMP of every key)."""

from __future__ import annotations

import shlex
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import redis

# Commands without the readonly flag that read nothing and write nothing: connection
# set-up, pub/sub (the Celery heartbeats) and CLIENT LIST (BullMQ's workers).
NOT_WRITES = {
    "auth", "hello", "select", "ping", "echo", "info", "client|list", "client|setinfo",
    "client|setname", "psubscribe", "punsubscribe", "subscribe", "unsubscribe", "reset",
}  # fmt: skip


def snapshot(client: redis.Redis) -> dict[bytes, tuple[object, bool]]:
    """Every key: its content and whether it has a time to live. Content, not DUMP: a read
    may advance the incremental rehashing of a hash or set, which reorders its DUMP."""
    out = {}
    for key in client.scan_iter(count=1000):
        out[key] = (_content(client, key), client.pttl(key) > 0)
    return out


def _content(client: redis.Redis, key: bytes) -> object:
    kind = client.type(key).decode()
    if kind == "string":
        return client.get(key)
    if kind == "hash":
        return sorted(client.hgetall(key).items())
    if kind == "list":
        return client.lrange(key, 0, -1)
    if kind == "set":
        return sorted(client.smembers(key))
    if kind == "zset":
        return client.zrange(key, 0, -1, withscores=True)
    if kind == "stream":  # entries, groups, their pending entries and consumers
        return (client.xrange(key), repr(client.xinfo_stream(key, full=True)))
    return kind


def explain(client: redis.Redis, keys: list[str]) -> dict[str, object]:
    """What the keys hold now (for a failure's message)."""
    out: dict[str, object] = {}
    for key in keys:
        kind = client.type(key).decode()
        out[key] = client.hgetall(key) if kind == "hash" else kind
    return out


def changed(before: dict[bytes, Any], after: dict[bytes, Any]) -> list[str]:
    """Keys made, changed or removed (one with a time to live may have expired)."""
    out = []
    for key in before.keys() | after.keys():
        if key not in after and before[key][1]:
            continue  # expired
        if before.get(key) != after.get(key):
            out.append(key.decode(errors="replace"))
    return sorted(out)


def command_names(lines: list[str]) -> list[str]:
    """Command names (with the subcommand of container commands) of MONITOR lines."""
    names = []
    for line in lines:
        if "]" not in line:
            continue
        words = shlex.split(line.split("]", 1)[1])
        if not words:
            continue
        name = words[0].lower()
        if name in ("client", "xinfo", "object", "command", "config") and len(words) > 1:
            name = f"{name}|{words[1].lower()}"
        names.append(name)
    return names


def writes(client: redis.Redis, names: list[str]) -> list[str]:
    """The names that are not reads by the server's COMMAND INFO."""
    out = []
    for name in sorted(set(names)):
        if name in NOT_WRITES:
            continue
        info = client.execute_command("COMMAND", "INFO", name)  # redis-py: {name: {...}}
        entry = info.get(name) or next(iter(info.values()), None) if info else None
        flags = {f.decode() if isinstance(f, bytes) else f for f in (entry or {}).get("flags", ())}
        if "readonly" not in flags or "write" in flags:
            out.append(name)
    return out


class Monitor:
    """MONITOR of a Redis from start() to stop(): the commands seen in between (nothing else
    may talk to that Redis meanwhile)."""

    def __init__(self, url: str, log: Path) -> None:
        self.url, self.log = url, log
        with log.open("w") as out:
            self.process = subprocess.Popen(["redis-cli", "-u", url, "monitor"], stdout=out)
        deadline = time.monotonic() + 10
        while "OK" not in log.read_text():
            assert time.monotonic() < deadline, "MONITOR did not start"
            time.sleep(0.02)

    def stop(self) -> list[str]:
        """Command names seen (with the subcommand of XINFO, CLIENT, ...)."""
        admin = redis.Redis.from_url(self.url)
        try:
            # Everything sent before the sentinel has been shown once the sentinel is.
            sentinel = f"readonly-{uuid.uuid4().hex}"
            admin.echo(sentinel)
            deadline = time.monotonic() + 30
            while sentinel not in self.log.read_text():
                assert time.monotonic() < deadline, "MONITOR lost the sentinel"
                time.sleep(0.02)
        finally:
            self.process.terminate()
            self.process.wait(10)
            admin.close()
        lines = self.log.read_text().split(sentinel)[0].splitlines()[:-1]  # up to the ECHO
        return command_names(lines)
