"""What a submit sends: the submit script's arguments for each job, and a bulk submit's
script calls, made one at a time.

A bulk submit is cut into calls of at most ``BATCH_JOBS`` jobs, each atomic. They are made
lazily so that the caller can write each one as soon as it is made (``direct.stream``): Redis
runs a call while the client builds the next, instead of waiting until all are built.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from redis.exceptions import ResponseError

from jobqueue.errors import InvalidJob
from jobqueue.models import JobSpec

__all__ = ["BATCH_JOBS", "DEPTH", "FIELDS", "batches", "submit_args", "submit_error"]

FIELDS = 9  # submit script arguments per job (submit.lua)
# Jobs per script call. A call holds Redis's one thread while it runs (~20 us a job here:
# bench/README.md, round seven), so no worker's take runs meanwhile: 4 ms at 200 against 10
# at 500. What a call costs beyond its jobs (the settings, the indexes, the event) is ~50 us,
# a quarter of a microsecond a job at 200. And the first call goes out once 200 jobs are made.
BATCH_JOBS = 200
BATCH_BYTES = 4 * 1024 * 1024  # payload bytes per script call
# Script calls per round trip: the replies wait in Redis until the last call is written.
DEPTH = 20


def submit_args(job_id: str, spec: JobSpec, payload: str) -> list[Any]:
    """The submit script's arguments for one job; ``payload``: the spec's payload as
    ``encoded_payload`` gave it (checked against the limit)."""
    return [
        job_id,
        spec.name,
        payload,
        spec.priority,
        round(spec.delay * 1000),
        spec.attempts,
        spec.backoff,
        "" if spec.timeout is None else repr(spec.timeout),
        spec.dedup_key or "",
    ]


def batches(jobs: Iterable[list[Any]]) -> Iterator[list[Any]]:
    """The submit script's arguments of each call (the job count, then each job's
    ``submit_args``), made as ``jobs`` yields them."""
    batch: list[Any] = []
    size = 0
    for args in jobs:
        batch.extend(args)
        size += len(args[2])
        if len(batch) >= BATCH_JOBS * FIELDS or size >= BATCH_BYTES:
            yield [len(batch) // FIELDS, *batch]
            batch, size = [], 0
    if batch:
        yield [len(batch) // FIELDS, *batch]


def submit_error(exc: ResponseError) -> Exception:
    """The submit script's refusals as the client's errors (nothing of that call was
    written)."""
    message = str(exc)
    if message.startswith("invalid payload: "):
        return InvalidJob("payload", message.removeprefix("invalid payload: "))
    return exc
