"""The Redis job protocol: key names, Lua scripts and the async operations of one queue."""

from jobqueue.protocol.batched import stats_of_many
from jobqueue.protocol.keys import QUEUES_KEY, WAKEUPS_CHANNEL, QueueKeys, validate_queue_name
from jobqueue.protocol.queue import AnyRedis, QueueProtocol, known_queues
from jobqueue.protocol.replies import (
    CancelResult,
    CompleteResult,
    FailResult,
    LeasedJob,
    LeaseStatus,
    RetryAllResult,
    StatsSnapshot,
    event_job_ids,
)
from jobqueue.protocol.waiting import cancel_requests, wait_for_any, wait_then_take, wake_worker

__all__ = [
    "QUEUES_KEY",
    "WAKEUPS_CHANNEL",
    "AnyRedis",
    "CancelResult",
    "CompleteResult",
    "FailResult",
    "LeaseStatus",
    "LeasedJob",
    "QueueKeys",
    "QueueProtocol",
    "RetryAllResult",
    "StatsSnapshot",
    "cancel_requests",
    "event_job_ids",
    "known_queues",
    "stats_of_many",
    "validate_queue_name",
    "wait_for_any",
    "wait_then_take",
    "wake_worker",
]
