"""spec.scaleTargetRef: an existing Deployment or StatefulSet the operator scales (pure).

The workload is read whole (GET: its counts and selector) each poll and scaled through its
scale subresource; the operator changes nothing else of it (its chart owns the rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobqueue_operator.deployments import DeploymentView, view_of


@dataclass(frozen=True)
class Target:
    """A scaled workload as one poll saw it."""

    kind: str  # Deployment or StatefulSet
    name: str
    selector: str  # its pods' label selector, in string form
    view: DeploymentView

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"


def target_of(kind: str, body: dict[str, Any]) -> Target:
    spec = body.get("spec") or {}
    return Target(
        kind=kind,
        name=str((body.get("metadata") or {}).get("name") or ""),
        selector=selector_string(spec.get("selector") or {}),
        view=view_of(body),
    )


def selector_string(selector: dict[str, Any]) -> str:
    """A LabelSelector (matchLabels, matchExpressions) in the string form list calls take."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, op = expression.get("key"), expression.get("operator")
        values = ",".join(expression.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({values})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)
