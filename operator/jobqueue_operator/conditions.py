"""metav1.Condition bookkeeping (pure): set a condition, keep lastTransitionTime honest, and
say which transitions are worth a Warning."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

Status = Literal["True", "False", "Unknown"]
EventType = Literal["Normal", "Warning"]

# The negative conditions: True is the trouble. Every other condition is positive, as
# Kubernetes conditions mostly are (Ready, RedisReachable): False is the trouble.
NEGATIVE = {"FailureRateHigh", "ScalingLimited"}
# Ready=False coming from these reasons (or from no condition at all: a new JobQueue) is no
# trouble: nothing could be ready yet.
NOTHING_TO_BE_READY = {"ScaledToZero"}
# Conditions that describe rather than warn: a foreign queue system keeps less than ours
# by design (MetricsComplete=False is a fact of the setup, not trouble).
INFORMATIONAL = {"MetricsComplete"}


def rfc3339(unix_seconds: float) -> str:
    """Kubernetes' timestamp format (seconds precision, Z)."""
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Transition:
    """A condition whose status changed (worth an event)."""

    type: str
    old: str | None
    new: Status
    reason: str
    message: str
    old_reason: str | None = None


def set_condition(
    conditions: list[dict[str, Any]],
    type_: str,
    status: Status,
    reason: str,
    message: str,
    *,
    generation: int | None,
    now: float,
) -> tuple[list[dict[str, Any]], Transition | None]:
    """Return the new list and the transition when the status changed.

    lastTransitionTime moves only when the status changes; reason and message follow
    the latest observation.
    """
    previous = next((c for c in conditions if c.get("type") == type_), None)
    changed = previous is None or previous.get("status") != status
    entry = {
        "type": type_,
        "status": status,
        "observedGeneration": generation,
        "lastTransitionTime": rfc3339(now)
        if changed or previous is None
        else previous.get("lastTransitionTime") or rfc3339(now),
        "reason": reason,
        "message": message[:1024],
    }
    if generation is None:
        del entry["observedGeneration"]
    others = [c for c in conditions if c.get("type") != type_]
    old = None if previous is None else previous.get("status")
    old_reason = None if previous is None else previous.get("reason")
    transition = Transition(type_, old, status, reason, message, old_reason) if changed else None
    return [*others, entry], transition


def event_type(transition: Transition) -> EventType:
    """Warning when a condition turns to trouble, Normal when it turns back (or starts
    well); a JobQueue whose workers are only starting is not in trouble."""
    trouble: Status = "True" if transition.type in NEGATIVE else "False"
    if transition.new != trouble or transition.type in INFORMATIONAL:
        return "Normal"
    if transition.type == "Ready" and (
        transition.old is None or transition.old_reason in NOTHING_TO_BE_READY
    ):
        return "Normal"
    return "Warning"
