"""Pydantic models of the JobQueue custom resource: the single source of truth.

The CRD schema (crds/), the reference (docs/reference/jobqueue.md) and the
operator's own parsing all come from these models. Cross-field rules that the
API server must enforce are attached as CEL ``x-kubernetes-validations`` through
``json_schema_extra`` so they live beside the fields they check.

One module per part of the spec; everything is imported from here.
"""

from jobqueue_operator.spec.base import (
    DEFAULT_WORKER_COMMAND,
    DEFAULT_WORKER_IMAGE,
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
)
from jobqueue_operator.spec.jobqueue import JobQueueSpec
from jobqueue_operator.spec.queue import CRON_PATTERN, QueueSettingsSpec, ScheduleSpec
from jobqueue_operator.spec.redis import RedisSpec, SecretKeyRef, TlsSecretRef
from jobqueue_operator.spec.scaling import (
    DEFAULT_SCALE_DOWN_PERCENT,
    DEFAULT_SCALE_DOWN_PERIOD_SECONDS,
    FailureAction,
    FailureRatePolicy,
    ScalingBehavior,
    ScalingMode,
    ScalingPolicy,
    ScalingPolicyType,
    ScalingRules,
    ScalingSpec,
    SelectPolicy,
)
from jobqueue_operator.spec.source import ScaleTargetRef, SourceKind, SourceSpec
from jobqueue_operator.spec.status import (
    Backlog,
    Condition,
    ConditionType,
    JobQueueStatus,
    Recommendation,
    ScheduleStatus,
)
from jobqueue_operator.spec.worker import EnvVar, ResourceRequirements, WorkerSpec

__all__ = [
    "CRON_PATTERN",
    "DEFAULT_SCALE_DOWN_PERCENT",
    "DEFAULT_SCALE_DOWN_PERIOD_SECONDS",
    "DEFAULT_WORKER_COMMAND",
    "DEFAULT_WORKER_IMAGE",
    "GROUP",
    "KIND",
    "PLURAL",
    "SHORT_NAMES",
    "SINGULAR",
    "VERSION",
    "Backlog",
    "Condition",
    "ConditionType",
    "EnvVar",
    "FailureAction",
    "FailureRatePolicy",
    "JobQueueSpec",
    "JobQueueStatus",
    "QueueSettingsSpec",
    "Recommendation",
    "RedisSpec",
    "ResourceRequirements",
    "ScaleTargetRef",
    "ScalingBehavior",
    "ScalingMode",
    "ScalingPolicy",
    "ScalingPolicyType",
    "ScalingRules",
    "ScalingSpec",
    "ScheduleSpec",
    "ScheduleStatus",
    "SecretKeyRef",
    "SelectPolicy",
    "SourceKind",
    "SourceSpec",
    "TlsSecretRef",
    "WorkerSpec",
]
