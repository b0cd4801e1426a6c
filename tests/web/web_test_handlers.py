"""Handlers for the web tests' worker processes (``--handlers web_test_handlers``).

``web.gated`` fails until the file its payload names exists, then succeeds: a job that fails,
is retried from the dashboard after the gate is opened, and completes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jobqueue.registry import task
from jobqueue.runtime.context import SyncJobContext


@task("web.gated")
def gated(ctx: SyncJobContext, payload: Any) -> dict[str, Any]:
    gate = Path(payload["gate"])
    if not gate.exists():
        raise RuntimeError(f"the gate {gate.name} is closed")
    return {"passed": gate.name, "attempt": ctx.attempt}
