"""The least Redis ACL each role needs (Redis 7): producers and workers of given queues, and the
operator. ``acl_rules(role, queues)`` gives the rules of ``ACL SETUSER name on >password
<rules...>``; ``acl_line`` the same as one line of an ACL file. The documentation shows their
output, and the tests run every role with exactly these rules.

What they allow:

* **Keys per queue, through the hash tag**: every key of queue ``q`` starts with ``{jq:q}:``
  (``jobqueue.protocol.keys``), so ``~{jq:q}:*`` is the whole queue and nothing of another.
  The one shared key is ``jq:queues``, the set of queue names (``jobq queues``): producers
  and workers add their queue's name to it and may list it.
* **Commands**: the protocol's Lua scripts run with the caller's permissions, so a user
  needs every command the scripts call, plus the few the clients send themselves. Producers
  and workers of one queue therefore get the same commands: Redis cannot tell a worker's
  ``complete`` script from a producer's ``submit`` script on the same keys, and the boundary
  the ACL draws is the queue. No user gets ``KEYS``, ``FLUSH*``, ``CONFIG``, ``DEBUG``, ``EVAL``
  of its own scripts on other keys, or any administrative command.
* **Channels**: ``jq:wakeups`` (the submit script announces an idle queue becoming busy;
  only the operator subscribes) and ``{jq:q}:cancels`` (workers learn of cancel requests).
* **The operator** reads every queue (its ``stats`` script calls read commands only) and
  writes nothing but the queues' stored settings (``spec.queueSettings``): the settings
  write is granted by a selector of its own, so no script the operator could run may write
  any other key. An operator whose JobQueues use ``spec.schedules`` stores them and fires
  their ticks (submitting their jobs): ``schedules=True`` gives it the scripts' commands on
  every queue's keys. (Workers fire due ticks too, so schedules added with ``jobq schedule``
  run without it.)

A Redis Cluster client also asks ``CLUSTER SLOTS`` and ``COMMAND`` when it starts, and
workers and the operator read ``INFO memory`` (is the server allowed to evict job records?).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from jobqueue.protocol.keys import QUEUES_KEY, WAKEUPS_CHANNEL, QueueKeys

__all__ = ["Role", "acl_line", "acl_rules"]


class Role(StrEnum):
    PRODUCER = "producer"
    WORKER = "worker"
    OPERATOR = "operator"


# Sent by redis-py on connecting (HELLO for RESP3, CLIENT SETNAME, SELECT) and by the
# Cluster client when it learns the slots and the commands' key positions. (redis-py also
# sends CLIENT SETINFO to Redis 7.2+ and ignores a refusal; 7.0 has no such command, and
# ACL SETUSER refuses to name one it does not know.)
_CONNECTION = ("ping", "hello", "client|setname", "select", "cluster|slots", "cluster|shards",
               "command", "readonly")  # fmt: skip
_SCRIPTING = ("evalsha", "script|load")
# Every command the Lua scripts call (tests/queue/test_q_acl.py checks this against them).
SCRIPT_COMMANDS = (
    "del", "exists", "get", "hdel", "hexists", "hget", "hgetall", "hincrby", "hkeys", "hlen",
    "hmget", "hset", "incr", "incrby", "persist", "pexpire", "publish", "set", "time", "xadd",
    "xrevrange", "zadd", "zcard", "zcount", "zrange", "zrangebyscore", "zrem", "zscore",
)  # fmt: skip
# Sent by the clients outside scripts (jobqueue.protocol.queue, .waiting, jobqueue.client).
_PRODUCER_OWN = ("sadd", "smembers", "hgetall", "hget", "hset", "zscore", "xread", "zrevrange",
                 "time", "wait")  # fmt: skip
_WORKER_OWN = ("sadd", "smembers", "hget", "hgetall", "bzpopmin", "zadd", "pexpire",
               "subscribe", "unsubscribe", "info")  # fmt: skip
# The stats script's commands: reads only.
# The stats and due scripts' commands (reads only), and the schedules' reads.
_OPERATOR_READS = ("zcard", "zcount", "zrange", "zrangebyscore", "zscore", "hmget", "hgetall",
                   "hget", "hexists", "hkeys", "hlen", "time", "exists", "get", "info",
                   "subscribe", "unsubscribe")  # fmt: skip


def _pattern(text: str) -> str:
    """``text`` as a literal in an ACL glob pattern (queue names may hold * ? [ ] \\)."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def _commands(*groups: Iterable[str]) -> list[str]:
    return [f"+{c}" for c in dict.fromkeys(c for group in groups for c in group)]


def acl_rules(
    role: Role | str, queues: Iterable[str] = (), *, schedules: bool = False
) -> list[str]:
    """The ACL rules of ``role`` (for the producer and the worker: of ``queues``), to follow
    ``ACL SETUSER <name> on ><password>``. ``schedules`` (the operator only): its JobQueues
    use spec.schedules, so it stores them and fires their ticks, submitting their jobs: it
    then needs the scripts' commands on every queue's keys."""
    role = Role(role)
    base = ["resetkeys", "resetchannels", "-@all"]
    if role is Role.OPERATOR:
        writes = SCRIPT_COMMANDS if schedules else ()
        return [
            *base,
            *_commands(_CONNECTION, _SCRIPTING, _OPERATOR_READS, writes),
            "~{jq:*}:*",
            f"&{_pattern(WAKEUPS_CHANNEL)}",
            # Without schedules it writes nothing but the settings hashes: HSET only through
            # this selector.
            *([] if schedules else ["(+hset ~{jq:*}:settings)"]),
        ]
    if schedules:
        raise ValueError("schedules=True is for the operator (producers and workers have it)")
    names = list(queues)
    if not names:
        raise ValueError(f"the {role.value} rules need the queues they serve")
    own = _PRODUCER_OWN if role is Role.PRODUCER else _WORKER_OWN
    keys = [f"~{_pattern(QueueKeys(q).prefix)}*" for q in names]
    channels = [f"&{_pattern(QueueKeys(q).cancel_channel)}" for q in names]
    return [
        *base,
        *_commands(_CONNECTION, _SCRIPTING, SCRIPT_COMMANDS, own),
        *keys,
        f"~{_pattern(QUEUES_KEY)}",
        f"&{_pattern(WAKEUPS_CHANNEL)}",
        *channels,
    ]


def acl_line(
    user: str,
    role: Role | str,
    queues: Iterable[str] = (),
    password: str = "",
    *,
    schedules: bool = False,
) -> str:
    """The user as one line of an ACL file (``password`` as given, else ``<password>``)."""
    secret = f">{password}" if password else "><password>"
    return " ".join(["user", user, "on", secret, *acl_rules(role, queues, schedules=schedules)])
