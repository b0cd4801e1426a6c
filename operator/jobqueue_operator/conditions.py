"""metav1.Condition bookkeeping (pure): set a condition, keep lastTransitionTime honest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

Status = Literal["True", "False", "Unknown"]


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
    transition = Transition(type_, old, status, reason, message) if changed else None
    return [*others, entry], transition
