"""What a queue source can observe, and what the decision does without the rest (pure).

Our own queue shows everything. A foreign one shows what its system keeps in Redis: a plain
list has no running jobs or ages, Celery keeps no failure record, BullMQ names no pod per
job. Rather than pretend (a failure gate fed zeros never trips; a latency rule fed zeros never
acts), each rule that needs a missing signal is switched off, and the status says which and
what that costs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from enum import StrEnum

from jobqueue_operator.scaling.model import Policy


class Signal(StrEnum):
    """One kind of figure a source reads (the names the status lists)."""

    WAITING = "waiting"  # jobs that need a worker now
    IN_FLIGHT = "inFlight"  # jobs a worker holds (running, or prefetched by a busy one)
    DELAYED = "delayed"  # jobs scheduled for later, and which of them are due
    OLDEST_WAIT = "oldestWait"  # how long the next job has waited
    OUTCOMES = "outcomes"  # completed and failed attempts over the failure window
    WORKERS = "workers"  # live workers
    WORKER_LOADS = "workerLoads"  # which worker (pod) holds how many jobs


ALL_SIGNALS = frozenset(Signal)

# What each missing signal costs, in the order the status lists them.
COSTS = {
    Signal.WAITING: "waiting jobs are not seen: the backlog rule sees only jobs in flight",
    Signal.IN_FLIGHT: (
        "running jobs are not seen: the count may drop while workers are busy (give the "
        "workers a termination grace period of at least the longest job)"
    ),
    Signal.DELAYED: "scheduled jobs are not seen: due ones wake no worker",
    Signal.OLDEST_WAIT: "job ages are not seen: targetWaitSeconds is not applied",
    Signal.OUTCOMES: "no failure counts: the failure gate is off",
    Signal.WORKERS: "live workers are not counted",
    Signal.WORKER_LOADS: (
        "which pod holds which jobs is not seen: scale-down cannot spare the busy pods "
        "(no pod-deletion-cost)"
    ),
}


def missing(observed: Iterable[Signal]) -> tuple[Signal, ...]:
    """The signals not observed, in the order of ``Signal``."""
    seen = frozenset(observed)
    return tuple(s for s in Signal if s not in seen)


def adapt(policy: Policy, observed: Iterable[Signal]) -> Policy:
    """``policy`` with the rules whose inputs are missing switched off: the failure gate
    without outcomes, the latency rule without ages."""
    seen = frozenset(observed)
    changes: dict[str, object] = {}
    if Signal.OUTCOMES not in seen and policy.failure_gate_enabled:
        changes["failure_gate_enabled"] = False
    if Signal.OLDEST_WAIT not in seen and policy.target_wait_seconds is not None:
        changes["target_wait_seconds"] = None
    return dataclasses.replace(policy, **changes) if changes else policy  # type: ignore[arg-type]


def explain(observed: Iterable[Signal]) -> str:
    """One line on what the missing signals cost ('' when nothing is missing)."""
    return "; ".join(COSTS[s] for s in missing(observed))
