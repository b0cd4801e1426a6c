"""jobqueue: a reliable Redis job queue (protocol, clients, worker runtime, ``jobq`` CLI)."""

from jobqueue import errors
from jobqueue.client import AsyncQueue, CancelResult, Queue
from jobqueue.models import Job, JobSpec, JobState, QueueSettings
from jobqueue.registry import task

__all__ = [
    "AsyncQueue",
    "CancelResult",
    "Job",
    "JobSpec",
    "JobState",
    "Queue",
    "QueueSettings",
    "errors",
    "task",
]
