"""Errors raised by the job queue; every message is one line naming the problem."""

from __future__ import annotations

__all__ = [
    "DedupConflict",
    "InvalidJob",
    "InvalidState",
    "JobNotFound",
    "JobqueueError",
    "MalformedJob",
    "ReplicationTimeout",
    "ScheduleNotFound",
]


class JobqueueError(Exception):
    """Base class of the errors this package raises on purpose."""


class InvalidJob(JobqueueError, ValueError):
    """A job's submit options are invalid; nothing was written to Redis.

    ``field`` names the offending option (e.g. ``priority``, ``payload``).
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"invalid {field}: {problem}")
        self.field = field
        self.problem = problem


class JobNotFound(JobqueueError, LookupError):
    """No job with this id exists in the queue (never submitted, or expired)."""

    def __init__(self, queue: str, job_id: str) -> None:
        super().__init__(f"job {job_id!r} not found in queue {queue!r}")
        self.queue = queue
        self.job_id = job_id

    def __str__(self) -> str:  # LookupError would otherwise quote the whole message
        return str(self.args[0])


class InvalidState(JobqueueError):
    """The job exists but its state does not allow the operation (e.g. retry a completed job)."""

    def __init__(self, job_id: str, state: str, operation: str) -> None:
        super().__init__(f"cannot {operation} job {job_id!r}: it is {state}")
        self.job_id = job_id
        self.state = state
        self.operation = operation


class DedupConflict(InvalidState):
    """A dead job cannot run again: another unfinished job holds its dedup key now (two
    unfinished jobs never share a key)."""

    def __init__(self, job_id: str, dedup_key: str, holder: str) -> None:
        JobqueueError.__init__(
            self,
            f"cannot retry job {job_id!r}: its dedup key {dedup_key!r} is held by unfinished "
            f"job {holder!r}",
        )
        self.job_id = job_id
        self.state = "failed"
        self.operation = "retry"
        self.dedup_key = dedup_key
        self.holder = holder


class MalformedJob(JobqueueError):
    """A stored job record is damaged in a way that hides what it is (its state)."""

    def __init__(self, job_id: str, field: str, value: object) -> None:
        super().__init__(f"job {job_id!r} has a malformed record: field {field!r} is {value!r}")
        self.job_id = job_id
        self.field = field


class ReplicationTimeout(JobqueueError):
    """Redis took the jobs but fewer replicas than asked (``wait_replicas``) confirmed them
    in time: a failover now could lose them. They may well be there (``job_ids``); submit
    them again with a dedup key to be sure of one copy."""

    def __init__(self, queue: str, job_ids: list[str], acked: int, wanted: int) -> None:
        super().__init__(
            f"{len(job_ids)} job(s) submitted to queue {queue!r} reached {acked} of the "
            f"{wanted} replica(s) asked for in time (first id {job_ids[0] if job_ids else '-'})"
        )
        self.queue = queue
        self.job_ids = job_ids
        self.acked = acked
        self.wanted = wanted


class ScheduleNotFound(JobqueueError, LookupError):
    """No schedule with this name exists on the queue."""

    def __init__(self, queue: str, name: str) -> None:
        super().__init__(f"schedule {name!r} not found on queue {queue!r}")
        self.queue = queue
        self.name = name

    def __str__(self) -> str:
        return str(self.args[0])
