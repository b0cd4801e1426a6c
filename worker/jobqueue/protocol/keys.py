"""Every Redis key name of the job queue is made here, and nowhere else.

All keys of one queue share the hash tag ``{jq:<queue>}`` so they live in one Redis Cluster
slot and one Lua script may touch them all. The only key outside a queue's slot is the
global set of known queues (``jq:queues``), written by clients outside the per-queue scripts;
the submit script also publishes on the global channel ``jq:wakeups`` (a channel, not a key).

Per-queue keys (suffix after ``{jq:<queue>}:``):

============  ======  ==========================================================
job:<id>      hash    the job record (fields: see ``jobqueue.models.Job``)
queued        zset    ready jobs, score priority * 2**42 + sequence (lower first)
enqueued      zset    the same ids scored by the unix ms they became ready (oldest age)
delayed       zset    scheduled jobs and retries waiting out a backoff, score due ms
active        zset    leased jobs, score lease expiry ms
completed     zset    finished jobs by finish ms (trimmed by count and age)
failed        zset    the dead letter: attempts exhausted, by finish ms (trimmed)
cancelled     zset    cancelled jobs by finish ms (trimmed)
marker        zset    a single member idle workers block on with BZPOPMIN (wake-up hint)
wake:<worker> zset    one worker's own wake-up (set when it stops while blocked); short-lived
events        stream  state changes (job, event[, data]; or jobs, event), MAXLEN ~ bounded
dedup         hash    dedup key -> id of the unfinished job that holds it
seq           string  FIFO sequence counter within a priority
outcomes      hash    attempt outcomes per 5 s bucket: ``s:<bucket>`` / ``f:<bucket>``
workers       zset    worker id -> unix ms after which its entry is stale
workerinfo    hash    worker id -> JSON of ``jobqueue.stats.WorkerInfo``
settings      hash    the queue's stored settings (``jobqueue.models.QueueSettings``
                      fields that were set; the others take their defaults)
schedules     hash    schedule name -> JSON of ``jobqueue.schedules.Schedule``
schedule_due  zset    schedule name -> unix ms of its next tick (absent while paused);
                      firing a tick claims it by moving this score (compare-and-set)
schedule_runs hash    schedule name -> JSON: last tick, last job id, fired at, skipped
guard         -       never written: every script that reads job records declares it,
                      so while the queue's slot migrates between Redis Cluster nodes
                      (the key is missing on both) Redis refuses the script with
                      TRYAGAIN before it runs, instead of letting it read a job hash
                      that has not moved yet as missing
taken:<req>   string  the jobs one take call leased (worker, id, token...), kept
                      for the lease's length so a lost reply can be recovered
============  ======  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FIXED_KEY_NAMES",
    "QUEUES_KEY",
    "WAKEUPS_CHANNEL",
    "QueueKeys",
    "validate_queue_name",
]

#: Global set of known queue names (for ``jobq queues``); deliberately outside any hash tag.
QUEUES_KEY = "jq:queues"

#: Pub/sub channel on which a submit to an idle queue announces the queue's name, so an
#: operator reacts without waiting for its next poll. Outside any hash tag on purpose: a
#: classic PUBLISH in Redis Cluster reaches subscribers connected to any node.
WAKEUPS_CHANNEL = "jq:wakeups"

#: The fixed per-queue keys. Each script declares in KEYS those it touches (its
#: ``--! keys:`` header, see scripts.py); job hashes are built inside the scripts.
FIXED_KEY_NAMES: tuple[str, ...] = (
    "queued",
    "enqueued",
    "delayed",
    "active",
    "completed",
    "failed",
    "cancelled",
    "marker",
    "events",
    "dedup",
    "seq",
    "outcomes",
    "workers",
    "workerinfo",
    "settings",
    "schedules",
    "schedule_due",
    "schedule_runs",
    "guard",
)

_MAX_QUEUE_NAME = 200


def validate_queue_name(queue: str) -> str:
    """Queue names are non-empty, printable, without braces (they would break the hash tag)."""
    if not isinstance(queue, str) or not queue:
        raise ValueError("queue name must be a non-empty string")
    if len(queue) > _MAX_QUEUE_NAME:
        raise ValueError(f"queue name is longer than {_MAX_QUEUE_NAME} characters")
    if any(ch in "{}" or not ch.isprintable() or ch.isspace() for ch in queue):
        raise ValueError(
            f"queue name {queue!r} may not contain braces, whitespace or control characters"
        )
    return queue


@dataclass(frozen=True)
class QueueKeys:
    """Key names of one queue."""

    queue: str

    def __post_init__(self) -> None:
        validate_queue_name(self.queue)

    @property
    def prefix(self) -> str:
        return f"{{jq:{self.queue}}}:"

    @property
    def job_prefix(self) -> str:
        """Prefix of job hashes; scripts append the job id."""
        return self.prefix + "job:"

    def job(self, job_id: str) -> str:
        return self.job_prefix + job_id

    def key(self, name: str) -> str:
        if name not in FIXED_KEY_NAMES:
            raise KeyError(name)
        return self.prefix + name

    @property
    def fixed(self) -> list[str]:
        """Every fixed key of the queue, in FIXED_KEY_NAMES order."""
        return [self.prefix + name for name in FIXED_KEY_NAMES]

    @property
    def queued(self) -> str:
        return self.prefix + "queued"

    @property
    def delayed(self) -> str:
        return self.prefix + "delayed"

    @property
    def active(self) -> str:
        return self.prefix + "active"

    @property
    def marker(self) -> str:
        return self.prefix + "marker"

    @property
    def events(self) -> str:
        return self.prefix + "events"

    def journal(self, request_id: str) -> str:
        """The record of what one take call (``request_id``) leased (see take.lua)."""
        return self.prefix + "taken:" + request_id

    def worker_wake(self, worker_id: str) -> str:
        """A zset only one worker blocks on (beside the markers): adding to it ends that
        worker's wait at once, e.g. when it is asked to stop."""
        return self.prefix + "wake:" + worker_id

    @property
    def cancel_channel(self) -> str:
        """Pub/sub channel on which cancel requests for active jobs are announced."""
        return self.prefix + "cancels"

    def finished(self, state: str) -> str:
        """The zset of a finished or scheduled state (completed/failed/cancelled/delayed...)."""
        return self.key(state)
