"""spec.source and spec.scaleTargetRef: which queue system is read, which workload is scaled."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from jobqueue_operator.spec.base import CamelModel, cel


class SourceKind(StrEnum):
    """The queue system a JobQueue reads."""

    JOBQUEUE = "JobQueue"
    BULLMQ = "BullMQ"
    CELERY = "Celery"
    RQ = "RQ"
    LIST = "List"
    STREAM = "Stream"


_QueueName = Annotated[str, Field(min_length=1, max_length=512)]


class SourceSpec(CamelModel):
    """The queue the operator reads to size the workers: this project's own (JobQueue, the
    default) or one a foreign system keeps in Redis, read without changing a key."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.kind == 'JobQueue' || (has(self.queues) && size(self.queues) > 0)",
                    "spec.source.queues is required for a foreign queue system (its queue "
                    "names, list keys or stream keys)",
                    ".queues",
                ),
                cel(
                    "self.kind != 'JobQueue' || !has(self.queues)",
                    "spec.source.queues is for foreign queue systems; for kind JobQueue set "
                    "spec.queue",
                    ".queues",
                ),
                cel(
                    "self.kind == 'Stream' || !has(self.consumerGroup)",
                    "spec.source.consumerGroup is for kind Stream",
                    ".consumerGroup",
                ),
                cel(
                    "self.kind != 'Stream' || has(self.consumerGroup)",
                    "spec.source.consumerGroup is required for kind Stream",
                    ".consumerGroup",
                ),
                cel(
                    "self.kind in ['BullMQ', 'Celery'] || !has(self.prefix)",
                    "spec.source.prefix is for kinds BullMQ and Celery",
                    ".prefix",
                ),
                cel(
                    "self.kind == 'List' || !has(self.inFlightKeys)",
                    "spec.source.inFlightKeys is for kind List",
                    ".inFlightKeys",
                ),
                cel(
                    "self.kind == 'RQ' || (!has(self.resultTtlSeconds) && "
                    "!has(self.failureTtlSeconds))",
                    "spec.source.resultTtlSeconds and failureTtlSeconds are for kind RQ",
                    ".resultTtlSeconds",
                ),
            ]
        }
    )

    kind: SourceKind = SourceKind.JOBQUEUE
    """JobQueue (this project's queue, spec.queue), BullMQ (Flowise's queue mode), Celery
    with the Redis broker (Dify, Langflow), RQ, List (a plain Redis list) or Stream (a Redis
    stream read by a consumer group)."""
    queues: list[_QueueName] | None = Field(default=None, max_length=64)
    """What to read: BullMQ queue names (Flowise: <QUEUE_NAME>-prediction and
    <QUEUE_NAME>-upsertion), Celery queue names (Dify: its -Q list), RQ queue names, list
    keys (List) or stream keys (Stream). The figures of all of them are added up: one
    worker Deployment serves them all."""
    prefix: str | None = Field(default=None, max_length=256)
    """BullMQ's key prefix (default bull) or Celery's broker global_keyprefix (default
    none)."""
    consumer_group: str | None = Field(default=None, min_length=1, max_length=256)
    """Stream: the consumer group whose pending entries and lag are read."""
    in_flight_keys: list[_QueueName] | None = Field(default=None, max_length=64)
    """List: lists that hold the jobs being worked on (the reliable-queue pattern: LMOVE
    from the queue to a processing list), counted as in flight."""
    result_ttl_seconds: int | None = Field(default=None, ge=1, le=31_536_000)
    """RQ: the workers' result_ttl (default 500): how long a finished job stays in the
    finished registry, which the completed count over the window is read from."""
    failure_ttl_seconds: int | None = Field(default=None, ge=1, le=315_360_000)
    """RQ: the workers' failure_ttl (default one year), as above for the failed registry."""

    def names(self, default: str) -> list[str]:
        """The queues read (``default``, spec.queue or the name, for kind JobQueue)."""
        return list(self.queues or [default])


class ScaleTargetRef(CamelModel):
    """An existing workload the operator scales through its scale subresource instead of
    running a worker Deployment of its own (the worker Deployment of a Helm chart)."""

    api_version: str = Field(default="apps/v1", pattern=r"^apps/v1$")
    """API version of the workload: apps/v1."""
    kind: Literal["Deployment", "StatefulSet"]
    """Deployment or StatefulSet."""
    name: str = Field(min_length=1, max_length=253)
    """Name of the workload, in the JobQueue's namespace."""
