"""Pydantic models of the JobQueue custom resource: the single source of truth.

The CRD schema (crds/), the reference (docs/reference/jobqueue.md) and the
operator's own parsing all come from these models. Cross-field rules that the
API server must enforce are attached as CEL ``x-kubernetes-validations`` through
``json_schema_extra`` so they live beside the fields they check.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from jobqueue.egress import AllowList
from jobqueue.models import MAX_RETENTION_SECONDS, QueueSettings
from jobqueue.schedules import Schedule, build_schedule
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

GROUP = "jobqueue.dev"
VERSION = "v1alpha1"
KIND = "JobQueue"
PLURAL = "jobqueues"
SINGULAR = "jobqueue"
SHORT_NAMES = ["jq"]

DEFAULT_WORKER_IMAGE = "ghcr.io/jobqueue-operator/jobqueue-worker:0.1.0"
DEFAULT_WORKER_COMMAND = ["jobq", "worker"]


def _cel(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path is not None:
        entry["fieldPath"] = field_path
    return entry


def _defaults_of(model: type[BaseModel]) -> JsonDict:
    """A nested object's full default: the API server checks CEL rules on defaults as they
    are, so ``{}`` would not do."""
    dumped: JsonDict = model().model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


class _Model(BaseModel):
    """Base: camelCase on the wire, snake_case in Python, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
    )


class ScalingMode(StrEnum):
    """Who owns the worker replica count."""

    AUTO = "Auto"
    MANUAL = "Manual"
    PAUSED = "Paused"


class FailureAction(StrEnum):
    """What the failure gate does while it is tripped."""

    BACKOFF = "Backoff"
    HOLD = "Hold"
    SCALE_TO_MIN = "ScaleToMin"


class SecretKeyRef(_Model):
    """A key of a Secret in the JobQueue's namespace."""

    name: str = Field(min_length=1, max_length=253)
    """Name of the Secret."""
    key: str = Field(min_length=1, max_length=253)
    """Key within the Secret whose value is used."""


class TlsSecretRef(_Model):
    """A Secret in the JobQueue's namespace holding a certificate and its key (the
    kubernetes.io/tls layout: tls.crt and tls.key)."""

    name: str = Field(min_length=1, max_length=253)
    """Name of the Secret."""
    cert_key: str = Field(default="tls.crt", min_length=1, max_length=253)
    """Key holding the PEM certificate (chain)."""
    key_key: str = Field(default="tls.key", min_length=1, max_length=253)
    """Key holding the PEM private key."""


_URL_SCHEME_RE = "rediss?([+](sentinel|cluster))?"


class RedisSpec(_Model):
    """Where the queue lives. Every Secret named here must be labelled
    jobqueue.dev/redis-credentials: "true" by its owner, or it is refused."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "(!has(self.caSecretRef) && !has(self.clientCertSecretRef)) || "
                    "self.url.startsWith('rediss')",
                    "spec.redis.caSecretRef and spec.redis.clientCertSecretRef need a TLS URL "
                    "(rediss://, rediss+sentinel:// or rediss+cluster://)",
                    ".url",
                )
            ]
        }
    )

    url: str = Field(
        min_length=1,
        max_length=2048,
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    f"self.matches('^{_URL_SCHEME_RE}://[^/?#]+')",
                    "spec.redis.url must start with redis://, rediss://, redis+sentinel://, "
                    "rediss+sentinel://, redis+cluster:// or rediss+cluster:// and a host",
                ),
                _cel(
                    f"!self.matches('^{_URL_SCHEME_RE}://[^/@]*:[^/@]*@')",
                    "spec.redis.url must not contain a password; use spec.redis.passwordSecretRef",
                ),
                _cel(
                    "!self.matches('[?&](password|sentinel_password|ssl_password|ssl_keyfile|"
                    "ssl_certfile|ssl_ca_certs|ssl_ca_path)=')",
                    "spec.redis.url must not carry a password or TLS files in its query; use "
                    "spec.redis.passwordSecretRef, caSecretRef and clientCertSecretRef",
                ),
                _cel(
                    "!self.matches('^rediss?[+]sentinel://[^/?#]+(/?$|/?[?])')",
                    "spec.redis.url: a redis+sentinel:// URL names the master after the hosts: "
                    "redis+sentinel://host:26379[,host:26379...]/MASTER[/DB]",
                ),
            ]
        },
    )
    """Redis URL: redis://host:6379/0 for one server, redis+sentinel://host:26379[,host:26379
    ...]/MASTER/0 for the master a set of sentinels names (followed across failovers),
    redis+cluster://host:6379[,host:6379...] for a Redis Cluster; rediss, rediss+sentinel
    and rediss+cluster for TLS. Options of the query: socket_timeout, ssl_check_hostname,
    wait_replicas (see the docs). Never put a password here: use passwordSecretRef."""
    username: str | None = Field(default=None, min_length=1, max_length=256, pattern=r"^\S+$")
    """Redis ACL user name (AUTH username password); the default user when unset."""
    password_secret_ref: SecretKeyRef | None = None
    """Secret key holding the Redis password; passed to workers via secretKeyRef and
    read by the operator from the Secret."""
    ca_secret_ref: SecretKeyRef | None = None
    """Secret key holding the PEM CA bundle that signed the Redis server's certificate (a
    private CA); the operator reads it, workers mount it. Needs a rediss:// URL."""
    client_cert_secret_ref: TlsSecretRef | None = None
    """Secret holding the client certificate and key, for a Redis that requires client
    certificates (tls-auth-clients); the operator reads it, workers mount it."""


class EnvVar(_Model):
    """An environment variable for the worker container (same shape as a container's env)."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1)
    """Variable name."""
    value: str | None = None
    """Literal value."""
    value_from: dict[str, Any] | None = None
    """Source of the value (secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef)."""


class ResourceRequirements(_Model):
    """Compute resources of the worker container."""

    limits: dict[str, int | str] | None = None
    """Maximum resources, e.g. {cpu: 500m, memory: 256Mi}."""
    requests: dict[str, int | str] | None = None
    """Minimum resources the scheduler reserves."""


# An allow-list host name: DNS labels, optionally under "*." (jobqueue.egress reads it the same).
_LABEL_RE = r"[a-zA-Z0-9_]([a-zA-Z0-9_-]*[a-zA-Z0-9_])?"
_ALLOW_HOST_RE = rf"^(\\*\\.)?{_LABEL_RE}(\\.{_LABEL_RE})*\\.?$"


class WorkerSpec(_Model):
    """The worker Deployment the operator runs."""

    image: str | None = Field(default=None, min_length=1)
    """Container image; defaults to the operator's worker image (the chart's workerImage;
    the bundled worker image unless changed)."""
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    """Image pull policy; the Kubernetes default when unset."""
    command: list[str] | None = Field(default=None, min_length=1)
    """Command; replaces the bundled `jobq worker`."""
    args: list[str] | None = None
    """Arguments to the command."""
    handlers: list[str] = Field(default_factory=list, max_length=64)
    """Python modules the bundled runtime imports to register task handlers
    (JOBQUEUE_HANDLERS)."""
    concurrency: int = Field(default=4, ge=1, le=1024)
    """Jobs one worker pod runs at a time (JOBQUEUE_CONCURRENCY)."""
    lease_seconds: int = Field(default=30, ge=1, le=3600)
    """Job lease; a crashed worker's jobs return to the queue after it lapses."""
    metrics_port: int = Field(default=9100, ge=1, le=65535)
    """Port of the worker's /metrics and /healthz endpoint."""
    log_format: Literal["text", "json"] = "json"
    """Worker log format."""
    env: list[EnvVar] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Extra environment variables, passed through like a container's env; each name at
    most once (they replace the operator's variables of the same name)."""
    http_allow: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(
        default_factory=list,
        max_length=64,
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "self.all(e, (isCIDR(e) && cidr(e) == cidr(e).masked()) || isIP(e) || "
                    f"e.matches('{_ALLOW_HOST_RE}'))",
                    "spec.worker.httpAllow entries must be networks (10.0.0.0/8, "
                    "fd00::/8), addresses or host names (api.internal, *.svc.cluster.local)",
                )
            ],
        },
    )
    """Networks and host names the built-in http.request may reach although they are not
    public (JOBQUEUE_HTTP_ALLOW). By default loopback, link-local (cloud metadata),
    private and reserved addresses are refused, so a job cannot read the cluster's
    internals; list here what this queue's jobs need, e.g. 10.20.0.0/16,
    billing.internal, *.shop.svc.cluster.local (a name allows every address it
    resolves to)."""
    resources: ResourceRequirements | None = None
    """Compute resources of the worker container."""
    termination_grace_period_seconds: int = Field(default=60, ge=0, le=86400)
    """Time a worker gets to finish its jobs after SIGTERM; the worker's shutdown
    timeout is set a little below it."""
    service_account_name: str | None = None
    """Service account of the worker pods. Whoever may create a JobQueue may run pods
    under any service account of its namespace: creating a JobQueue is as powerful as
    creating pods."""
    automount_service_account_token: bool = False
    """Mount the service account's API token in the worker pods. Off: the bundled worker
    never talks to the Kubernetes API, and a token a job could read is a token it could
    use. Turn it on for handlers that call the API."""
    security_context: dict[str, Any] | None = None
    """Container securityContext, merged over the hardened default (non-root, read-only
    root filesystem, no privilege escalation, all capabilities dropped, RuntimeDefault
    seccomp): a field set here wins, the defaults you do not mention stay (set one
    explicitly to change it, e.g. readOnlyRootFilesystem: false)."""
    pod_security_context: dict[str, Any] | None = None
    """Pod securityContext, merged over the default (runAsNonRoot, user/group 10001 as in
    the worker image, RuntimeDefault seccomp) the same way."""
    node_selector: dict[str, str] | None = None
    """Node selector of the worker pods."""
    tolerations: list[dict[str, Any]] | None = None
    """Tolerations of the worker pods."""
    affinity: dict[str, Any] | None = None
    """Affinity of the worker pods (node, pod and anti-affinity), as a pod's."""
    topology_spread_constraints: list[dict[str, Any]] | None = None
    """Topology spread of the worker pods, as a pod's; a constraint without a
    labelSelector gets the worker pods' selector."""
    priority_class_name: str | None = Field(default=None, min_length=1, max_length=253)
    """PriorityClass of the worker pods."""
    image_pull_secrets: list[str] | None = None
    """Names of Secrets to pull the worker image with."""
    pod_labels: dict[str, str] | None = None
    """Extra labels on worker pods."""
    pod_annotations: dict[str, str] | None = None
    """Extra annotations on worker pods."""

    @field_validator("env")
    @classmethod
    def _unique_env(cls, value: list[EnvVar]) -> list[EnvVar]:
        seen: set[str] = set()
        for var in value:
            if var.name in seen:
                raise ValueError(f"duplicate name {var.name!r}: each variable at most once")
            seen.add(var.name)
        return value

    @field_validator("http_allow")
    @classmethod
    def _check_http_allow(cls, value: list[str]) -> list[str]:
        AllowList.parse(value)
        return value


class FailureRatePolicy(_Model):
    """The failure gate, a circuit breaker: while most attempts fail, stop feeding jobs to
    a fleet that can only burn their attempts."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.recoveryThreshold) || self.recoveryThreshold < self.threshold",
                    "spec.scaling.failureRate.recoveryThreshold must be below "
                    "spec.scaling.failureRate.threshold",
                    ".recoveryThreshold",
                )
            ]
        }
    )
    threshold: float = Field(default=0.5, gt=0, le=1)
    """Failed share of attempts in the window, in (0, 1], at which the gate trips."""
    recovery_threshold: float | None = Field(default=None, ge=0, lt=1)
    """The gate clears once the failed share falls to or below this (hysteresis);
    defaults to half the threshold."""
    window_seconds: int = Field(default=20, ge=5, le=3600)
    """Window over which attempt outcomes are counted. Short, so the gate judges recent
    outcomes and trips before a backlog of slow failures has scaled the fleet up; minSamples
    keeps a handful of failures from tripping it."""
    min_samples: int = Field(default=20, ge=1, le=1000000)
    """Attempts needed in the window before the gate may trip."""
    action: FailureAction = FailureAction.BACKOFF
    """Backoff (default): shed at once to the share of the fleet whose attempts succeed
    (ceil(recommended x (1 - failure ratio)), never more than now, at least minReplicas
    and one probe pod while work waits). When a dependency is down that leaves the probe,
    so waiting jobs keep their attempts and run after the recovery instead of being
    dead-lettered; a partial failure keeps a matching part of the fleet. Hold: no scale-up
    while tripped (scale-down continues); every job still runs and fails its attempts.
    ScaleToMin: go to minReplicas (plus the probe) at once, whatever still succeeds."""
    enabled: bool = True
    """Turn the failure gate off."""

    @property
    def effective_recovery_threshold(self) -> float:
        """The ratio at or below which a tripped gate clears."""
        if self.recovery_threshold is not None:
            return self.recovery_threshold
        return self.threshold / 2


class ScalingPolicyType(StrEnum):
    """What a behaviour policy's value counts."""

    PODS = "Pods"
    PERCENT = "Percent"


class SelectPolicy(StrEnum):
    """Which of several behaviour policies applies."""

    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


class ScalingPolicy(_Model):
    """One rate limit, as in the HPA: at most `value` pods (Pods) or `value` % of the count at
    the start of the period (Percent) added or removed within `periodSeconds`."""

    type: ScalingPolicyType
    """Pods or Percent."""
    value: int = Field(ge=1, le=10000)
    """Pods, or percent of the count at the start of the period."""
    period_seconds: int = Field(ge=1, le=1800)
    """The period the limit looks back over."""


class ScalingRules(_Model):
    """Rate limits of one direction."""

    policies: list[ScalingPolicy] = Field(default_factory=list, max_length=10)
    """The limits; none means no limit."""
    select_policy: SelectPolicy = SelectPolicy.MAX
    """Max: the policy allowing the largest change applies; Min: the smallest; Disabled:
    no change in this direction at all (activation from zero still brings one pod)."""


def _down_rules_default() -> ScalingRules:
    return ScalingRules(
        policies=[
            ScalingPolicy(
                type=ScalingPolicyType.PERCENT,
                value=DEFAULT_SCALE_DOWN_PERCENT,
                period_seconds=DEFAULT_SCALE_DOWN_PERIOD_SECONDS,
            )
        ]
    )


# The default scale-down rate limit (see ScalingBehavior.scale_down).
DEFAULT_SCALE_DOWN_PERCENT = 50
DEFAULT_SCALE_DOWN_PERIOD_SECONDS = 30


class ScalingBehavior(_Model):
    """How fast the count may move (the HPA's behaviour policies). The stabilisation window
    (scaleDownStabilizationSeconds) decides whether to scale down; these limit by how much."""

    scale_up: ScalingRules = Field(
        default_factory=ScalingRules,
        json_schema_extra={"default": _defaults_of(ScalingRules)},
    )
    """Scale-up limits; none by default: the queue's recommendation applies at once."""
    scale_down: ScalingRules = Field(
        default_factory=_down_rules_default,
        json_schema_extra={
            "default": _down_rules_default().model_dump(by_alias=True, mode="json"),
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.policies) || "
                    "self.policies.all(p, p.type != 'Percent' || p.value <= 100)",
                    "spec.scaling.behavior.scaleDown.policies: a Percent scale-down policy "
                    "removes at most 100 % of the pods",
                    ".policies",
                )
            ],
        },
    )
    """Scale-down limits; by default at most half the pods per 30 s, so a fleet that the
    window lets go still steps down (100 -> 50 -> 25 ...) rather than dropping at once."""


class ScalingSpec(_Model):
    """How the operator sizes the worker Deployment."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.minReplicas) || !has(self.maxReplicas) || "
                    "self.minReplicas <= self.maxReplicas",
                    "spec.scaling.minReplicas must be less than or equal to "
                    "spec.scaling.maxReplicas",
                    ".minReplicas",
                )
            ]
        }
    )
    mode: ScalingMode = ScalingMode.AUTO
    """Auto: the operator sets the replica count from the queue. Manual: spec.replicas
    (the scale subresource, `kubectl scale`) sets it. Paused: the count is left as it is."""
    min_replicas: int = Field(default=0, ge=0, le=1000)
    """Fewest worker pods (0 allows scale to zero)."""
    max_replicas: int = Field(default=10, ge=1, le=1000)
    """Most worker pods; at least 1."""
    target_backlog_per_replica: int | None = Field(default=None, ge=1, le=1000000)
    """Queued plus in-flight jobs one replica should cover; defaults to
    worker.concurrency."""
    target_wait_seconds: float | None = Field(default=None, gt=0, le=86400)
    """The oldest queued job should not wait longer than this; when it does, replicas
    are raised in proportion to wait/target (at least +1, at most doubled per step)."""
    poll_interval_seconds: float = Field(default=2.0, ge=0.2, le=300)
    """How often the queue is read and the decision made."""
    scale_down_stabilization_seconds: int = Field(default=60, ge=0, le=3600)
    """Scale-down waits this long: the highest recommendation in the window wins."""
    pod_startup_seconds: int = Field(default=60, ge=1, le=3600)
    """How long starting pods (ready < replicas) hold the latency rule back: the oldest wait
    stays high until new pods pick old jobs up. A pod not ready after this (Pending,
    crash-looping) counts as lost, and the rule grows the fleet from the ready ones."""
    behavior: ScalingBehavior = Field(
        default_factory=ScalingBehavior,
        json_schema_extra={"default": _defaults_of(ScalingBehavior)},
    )
    """Rate limits of scale-up and scale-down (HPA-style policies)."""
    failure_rate: FailureRatePolicy = Field(
        default_factory=FailureRatePolicy,
        json_schema_extra={"default": _defaults_of(FailureRatePolicy)},
    )
    """The failure gate."""


class QueueSettingsSpec(_Model):
    """Settings of the queue, stored with it in Redis and honoured by every client and
    worker (jobqueue.models.QueueSettings). Fields left out keep what is stored there (set
    by a client or `jobq settings`), or their defaults."""

    result_ttl_seconds: float | None = Field(default=None, gt=0, le=MAX_RETENTION_SECONDS)
    """How long a finished job's record (result, error) is kept; default 7 days."""
    keep_completed: int | None = Field(default=None, ge=0, le=100_000_000)
    """At most this many completed jobs are kept (the oldest go first); default 10,000."""
    keep_failed: int | None = Field(default=None, ge=0, le=100_000_000)
    """At most this many dead-letter jobs are kept; default 50,000."""
    keep_cancelled: int | None = Field(default=None, ge=0, le=100_000_000)
    """At most this many cancelled jobs are kept; default 10,000."""
    keep_age_seconds: float | None = Field(default=None, gt=0, le=MAX_RETENTION_SECONDS)
    """Finished jobs older than this are deleted; default 7 days."""
    events_maxlen: int | None = Field(default=None, ge=0, le=100_000_000)
    """Length of the queue's event stream (what waiters read); 0 keeps no events (waiters
    then re-read the job instead); default 10,000."""
    max_payload_bytes: int | None = Field(default=None, ge=1, le=512 * 1024 * 1024)
    """Largest payload a submit may carry (bytes of JSON); default 1 MiB."""
    max_result_bytes: int | None = Field(default=None, ge=1, le=512 * 1024 * 1024)
    """Largest result a handler may return (bytes of JSON); default 1 MiB."""
    max_lease_lapses: int | None = Field(default=None, ge=1, le=1000)
    """A lease that lapses (a killed worker, a lost node) gives its attempt back; after this
    many lapses the job goes to the dead letter; default 5."""
    max_handbacks: int | None = Field(default=None, ge=1, le=1000)
    """Times a job may be handed back by workers without a handler for its name (a rolling
    deploy) before it goes to the dead letter; default 10."""

    def to_queue_settings(self) -> QueueSettings:
        """The given fields as queue settings (only they are stored)."""
        given = self.model_dump(exclude_unset=True, exclude_none=True)
        for ours, theirs in (
            ("result_ttl_seconds", "result_ttl"),
            ("keep_age_seconds", "keep_age"),
        ):
            if ours in given:
                given[theirs] = given.pop(ours)
        return QueueSettings(**given)


# A standard five-field cron expression (numbers, names, ranges, steps, lists) or a macro,
# each field within its range: CEL refuses what no cron could read, naming the field.
_MINUTE = r"[0-5]?[0-9]"
_HOUR = r"[01]?[0-9]|2[0-3]"
_DAY = r"0?[1-9]|[12][0-9]|3[01]"
_MONTH = r"0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
_WEEKDAY = r"[0-7]|(?i:sun|mon|tue|wed|thu|fri|sat)"


def _cron_field(value: str) -> str:
    item = rf"(\*|({value})(-({value}))?)(/[0-9]+)?"
    return rf"{item}(,{item})*"


CRON_PATTERN = (
    r"^(@(?i:yearly|annually|monthly|weekly|daily|midnight|hourly)|"
    + r"\s+".join(_cron_field(v) for v in (_MINUTE, _HOUR, _DAY, _MONTH, _WEEKDAY))
    + r")$"
)


class ScheduleSpec(_Model):
    """A recurring job: submitted on each tick of a cron expression or an interval, once
    per tick whatever runs (any worker of the queue, the operator)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "has(self.cron) != has(self.everySeconds)",
                    "give exactly one of cron and everySeconds",
                ),
            ]
        }
    )
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][\w.:-]*$")
    """The schedule's name (unique in the JobQueue)."""
    job_name: str = Field(min_length=1, max_length=200)
    """The name of the job each tick submits (a handler's name)."""
    cron: str | None = Field(
        default=None,
        max_length=200,
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    f"self.matches(r'{CRON_PATTERN}')",
                    "spec.schedules[].cron must be five cron fields (minute hour day month "
                    "weekday, within their ranges) or a macro such as @daily",
                )
            ]
        },
    )
    """A cron expression (minute hour day-of-month month day-of-week), read in timeZone;
    daylight saving time as Vixie cron: a tick in the skipped hour runs right after the
    change, one in the repeated hour runs once."""
    every_seconds: float | None = Field(default=None, ge=1, le=MAX_RETENTION_SECONDS)
    """An interval instead of cron."""
    time_zone: str = Field(default="UTC", min_length=1, max_length=100)
    """IANA time zone of the cron expression, e.g. Europe/Berlin."""
    payload: Any = Field(
        default=None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    """The job's payload (any JSON)."""
    priority: int = Field(default=5, ge=0, le=9)
    """The job's priority, 0 (first) to 9."""
    attempts: int = Field(default=3, ge=1, le=1000)
    """Tries per job."""
    backoff: str | None = Field(default=None, max_length=200)
    """The job's backoff, e.g. exponential:2."""
    timeout_seconds: float | None = Field(default=None, gt=0, le=7 * 86400)
    """Per-attempt time limit of the job."""
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] = "Allow"
    """While the last tick's job is unfinished: run anyway, skip the tick, or cancel the
    last job (as a CronJob's concurrencyPolicy)."""
    starting_deadline_seconds: float | None = Field(default=None, gt=0, le=MAX_RETENTION_SECONDS)
    """A tick missed (nothing ran) longer ago than this is skipped instead of run late; at
    most one missed tick runs, the latest."""
    suspend: bool = False
    """Stop the ticks until set back to false (a resume counts from then)."""

    def to_schedule(self) -> Schedule:
        """The schedule as the queue stores it (raises ValueError naming a bad field)."""
        options: dict[str, Any] = {
            "cron": self.cron, "every": self.every_seconds, "timezone": self.time_zone,
            "payload": self.payload, "priority": self.priority, "attempts": self.attempts,
            "backoff": self.backoff, "timeout": self.timeout_seconds,
            "concurrency_policy": self.concurrency_policy,
            "starting_deadline_seconds": self.starting_deadline_seconds,
            "paused": self.suspend, "source": "jobqueue",
        }  # fmt: skip
        return build_schedule(self.name, self.job_name, **options)


class JobQueueSpec(_Model):
    """Desired state of a JobQueue."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.replicas) || self.scaling.mode == 'Manual'",
                    "spec.replicas is honoured only with spec.scaling.mode: Manual; in Auto "
                    "the operator owns the replica count (set spec.scaling.minReplicas/"
                    "maxReplicas, or switch to Manual)",
                    ".replicas",
                )
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
        default_factory=WorkerSpec, json_schema_extra={"default": _defaults_of(WorkerSpec)}
    )
    """The worker pods."""
    scaling: ScalingSpec = Field(
        default_factory=ScalingSpec, json_schema_extra={"default": _defaults_of(ScalingSpec)}
    )
    """Autoscaling policy."""
    replicas: int | None = Field(default=None, ge=0, le=1000)
    """Replica count in Manual mode (the scale subresource's spec path); refused in
    Auto and Paused."""
    queue_settings: QueueSettingsSpec | None = None
    """Retention, event stream, size limits and bounds of the queue, written to Redis by the
    operator (clients and workers read them there)."""
    schedules: list[ScheduleSpec] = Field(
        default_factory=list,
        max_length=100,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Recurring jobs of the queue; stored with it in Redis by the operator (schedules added
    there by clients or `jobq schedule` are left alone). Their last and next runs are in
    status.schedules."""

    def queue_name(self, metadata_name: str) -> str:
        """The Redis queue this JobQueue serves."""
        return self.queue or metadata_name

    def backlog_target(self) -> int:
        """Queued plus in-flight jobs per replica."""
        return self.scaling.target_backlog_per_replica or self.worker.concurrency


class ConditionType(StrEnum):
    """Condition types set on a JobQueue."""

    READY = "Ready"
    REDIS_REACHABLE = "RedisReachable"
    FAILURE_RATE_HIGH = "FailureRateHigh"
    SCALING_LIMITED = "ScalingLimited"
    # False when Redis may evict keys (maxmemory-policy not noeviction): job records could
    # vanish under memory pressure.
    REDIS_NO_EVICTION = "RedisNoEviction"


class Condition(_Model):
    """A condition in the metav1.Condition shape."""

    type: str
    """Condition type: Ready, RedisReachable, FailureRateHigh or ScalingLimited."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    observed_generation: int | None = None
    """metadata.generation the condition was set for."""
    last_transition_time: str
    """When the status last changed (RFC 3339)."""
    reason: str
    """CamelCase reason."""
    message: str = ""
    """Human readable detail."""


class Backlog(_Model):
    """Jobs in the queue by state."""

    queued: int = 0
    """Jobs waiting to run."""
    active: int = 0
    """Jobs running now."""
    delayed: int = 0
    """Jobs scheduled for later."""
    delayed_due: int = 0
    """Delayed jobs whose time has come."""


class Recommendation(_Model):
    """One replica recommendation kept for the scale-down stabilisation window."""

    at: float
    """Unix seconds of the recommendation."""
    replicas: int
    """Recommended replicas."""


class ScheduleStatus(_Model):
    """Where one schedule of the queue stands."""

    name: str
    """The schedule's name."""
    source: str | None = None
    """jobqueue (spec.schedules) or api (added by a client or jobq schedule)."""
    suspended: bool | None = None
    """Paused: no ticks fire."""
    next_run_time: str | None = None
    """When its next tick is due (RFC 3339)."""
    last_run_time: str | None = None
    """When it last submitted a job (RFC 3339)."""
    last_job_id: str | None = None
    """The job it last submitted."""
    last_outcome: str | None = None
    """What its last due tick did: fired, skipped (past its starting deadline) or running
    (Forbid: the last job was unfinished)."""
    skipped_ticks: int | None = None
    """Ticks skipped so far."""


class JobQueueStatus(_Model):
    """Observed state of a JobQueue, written by the operator."""

    replicas: int | None = None
    """Replicas of the worker Deployment (the scale subresource's status path)."""
    ready_replicas: int | None = None
    """Ready worker pods."""
    desired_replicas: int | None = None
    """Replica count the operator decided on."""
    selector: str | None = None
    """Label selector of the worker pods (the scale subresource's selector)."""
    queue: str | None = None
    """The Redis queue served."""
    deployment: str | None = None
    """Name of the worker Deployment."""
    backlog: Backlog | None = None
    """Jobs by state."""
    backlog_total: int | None = None
    """queued + active + delayedDue, for the printer column."""
    oldest_wait_seconds: float | None = None
    """Age of the oldest queued job."""
    failure_ratio: float | None = None
    """Failed share of attempts over the failure window."""
    workers: int | None = None
    """Live workers in the queue's registry."""
    last_scale_time: str | None = None
    """When the replica count last changed (RFC 3339)."""
    last_scale_reason: str | None = None
    """Why the replica count last changed."""
    last_poll_time: str | None = None
    """When the queue was read for the status written (RFC 3339); written at once when
    something changes, else at least every 5 minutes. Stalled loops are caught by the
    operator's liveness probe, not by this field."""
    observed_generation: int | None = None
    """metadata.generation last acted on."""
    failure_gate_tripped: bool | None = None
    """Whether the failure gate is tripped (kept here so a restart keeps it)."""
    failure_gate_changed_at: float | None = None
    """Unix seconds of the gate's last change: it changes at most once per failure window."""
    failure_gate_recovering: bool | None = None
    """The gate cleared and the fleet is growing back in steps."""
    recommendations: list[Recommendation] | None = None
    """Recent recommendations for scale-down stabilisation (kept here so a restart
    loses nothing)."""
    conditions: list[Condition] | None = None
    """Ready, RedisReachable, FailureRateHigh, ScalingLimited, RedisNoEviction."""
    schedules: list[ScheduleStatus] | None = None
    """Each schedule of the queue: its next and last run."""
