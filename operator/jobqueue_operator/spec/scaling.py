"""spec.scaling: the autoscaling policy (modes, bounds, behavior, the failure gate)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import ConfigDict, Field

from jobqueue_operator.spec.base import CamelModel, cel, defaults_of


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


class FailureRatePolicy(CamelModel):
    """The failure gate, a circuit breaker: while most attempts fail, stop feeding jobs to
    a fleet that can only burn their attempts."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
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


class ScalingPolicy(CamelModel):
    """One rate limit, as in the HPA: at most `value` pods (Pods) or `value` % of the count at
    the start of the period (Percent) added or removed within `periodSeconds`."""

    type: ScalingPolicyType
    """Pods or Percent."""
    value: int = Field(ge=1, le=10000)
    """Pods, or percent of the count at the start of the period."""
    period_seconds: int = Field(ge=1, le=1800)
    """The period the limit looks back over."""


class ScalingRules(CamelModel):
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


class ScalingBehavior(CamelModel):
    """How fast the count may move (the HPA's behaviour policies). The stabilisation window
    (scaleDownStabilizationSeconds) decides whether to scale down; these limit by how much."""

    scale_up: ScalingRules = Field(
        default_factory=ScalingRules,
        json_schema_extra={"default": defaults_of(ScalingRules)},
    )
    """Scale-up limits; none by default: the queue's recommendation applies at once."""
    scale_down: ScalingRules = Field(
        default_factory=_down_rules_default,
        json_schema_extra={
            "default": _down_rules_default().model_dump(by_alias=True, mode="json"),
            "x-kubernetes-validations": [
                cel(
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


class ScalingSpec(CamelModel):
    """How the operator sizes the worker Deployment."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
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
        json_schema_extra={"default": defaults_of(ScalingBehavior)},
    )
    """Rate limits of scale-up and scale-down (HPA-style policies)."""
    failure_rate: FailureRatePolicy = Field(
        default_factory=FailureRatePolicy,
        json_schema_extra={"default": defaults_of(FailureRatePolicy)},
    )
    """The failure gate."""
