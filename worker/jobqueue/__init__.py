"""jobqueue: a reliable Redis job queue (protocol, clients, worker runtime, ``jobq`` CLI)."""

from jobqueue import errors
from jobqueue.client import AsyncQueue, CancelResult, Queue
from jobqueue.models import Job, JobSpec, JobState, QueueSettings
from jobqueue.registry import task
from jobqueue.runtime.context import JobContext
from jobqueue.runtime.failures import PermanentJobError

__all__ = [
    "AsyncQueue",
    "CancelResult",
    "Job",
    "JobContext",
    "JobSpec",
    "JobState",
    "PermanentJobError",
    "Queue",
    "QueueSettings",
    "errors",
    "task",
]
