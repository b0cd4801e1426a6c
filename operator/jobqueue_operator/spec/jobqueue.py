"""The JobQueue spec: the parts put together, with the rules that span them."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from jobqueue_operator.spec.base import CamelModel, cel, defaults_of
from jobqueue_operator.spec.queue import QueueSettingsSpec, ScheduleSpec
from jobqueue_operator.spec.redis import RedisSpec
from jobqueue_operator.spec.scaling import ScalingSpec
from jobqueue_operator.spec.source import ScaleTargetRef, SourceKind, SourceSpec
from jobqueue_operator.spec.worker import WorkerSpec


class JobQueueSpec(CamelModel):
    """Desired state of a JobQueue."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.replicas) || self.scaling.mode == 'Manual'",
                    "spec.replicas is honoured only with spec.scaling.mode: Manual; in Auto "
                    "the operator owns the replica count (set spec.scaling.minReplicas/"
                    "maxReplicas, or switch to Manual)",
                    ".replicas",
                ),
                cel(
                    "!has(self.source) || self.source.kind == 'JobQueue' || "
                    "has(self.scaleTargetRef) || has(self.worker.image)",
                    "a foreign queue system's workers need spec.worker.image (and command) "
                    "or spec.scaleTargetRef: the bundled worker cannot serve its queue",
                    ".worker.image",
                ),
                cel(
                    "!has(self.queueSettings) || !has(self.source) || "
                    "self.source.kind == 'JobQueue'",
                    "spec.queueSettings are stored with this project's queue; a foreign queue "
                    "system keeps its own settings",
                    ".queueSettings",
                ),
                cel(
                    "!has(self.schedules) || size(self.schedules) == 0 || !has(self.source) "
                    "|| self.source.kind == 'JobQueue'",
                    "spec.schedules submit to this project's queue; a foreign queue system "
                    "keeps its own schedules (Celery beat, BullMQ repeatable jobs)",
                    ".schedules",
                ),
                cel(
                    "!has(self.source) || self.source.kind == 'JobQueue' || "
                    "!self.redis.url.matches('^rediss?[+]cluster://')",
                    "a foreign queue system is read on one Redis server or through Sentinel: "
                    "BullMQ, Celery, RQ, List and Stream sources do not run on Redis Cluster",
                    ".redis.url",
                ),
            ]
        }
    )
    queue: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
    )
    """Queue name in Redis; defaults to metadata.name."""
    redis: RedisSpec
    """Redis connection."""
    worker: WorkerSpec = Field(
        default_factory=WorkerSpec, json_schema_extra={"default": defaults_of(WorkerSpec)}
    )
    """The worker pods."""
    scaling: ScalingSpec = Field(
        default_factory=ScalingSpec, json_schema_extra={"default": defaults_of(ScalingSpec)}
    )
    """Autoscaling policy."""
    replicas: int | None = Field(default=None, ge=0, le=1000)
    """Replica count in Manual mode (the scale subresource's spec path); refused in
    Auto and Paused."""
    queue_settings: QueueSettingsSpec | None = None
    """Retention, event stream, size limits and bounds of the queue, written to Redis by the
    operator (clients and workers read them there); only for spec.source.kind JobQueue."""
    schedules: list[ScheduleSpec] = Field(
        default_factory=list,
        max_length=100,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Recurring jobs of the queue; stored with it in Redis by the operator (schedules added
    there by clients or `jobq schedule` are left alone). Their last and next runs are in
    status.schedules."""
    source: SourceSpec = Field(
        default_factory=SourceSpec, json_schema_extra={"default": defaults_of(SourceSpec)}
    )
    """The queue system read to size the workers; this project's own queue by default."""
    scale_target_ref: ScaleTargetRef | None = None
    """Scale this existing Deployment or StatefulSet (through its scale subresource)
    instead of running a worker Deployment; spec.worker is then unused except concurrency
    (the jobs one pod runs at a time)."""

    @property
    def foreign(self) -> bool:
        """Whether the queue belongs to another system (read only; its own workers)."""
        return self.source.kind != SourceKind.JOBQUEUE

    def queue_name(self, metadata_name: str) -> str:
        """The Redis queue this JobQueue serves (the foreign queues, comma-separated)."""
        if self.foreign:
            return ",".join(self.source.names(self.queue or metadata_name))
        return self.queue or metadata_name

    def backlog_target(self) -> int:
        """Queued plus in-flight jobs per replica."""
        return self.scaling.target_backlog_per_replica or self.worker.concurrency
