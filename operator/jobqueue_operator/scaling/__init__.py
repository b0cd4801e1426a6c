"""The scaling decision: ``decide(metrics, replicas, policy, state, now)``, a pure function of
plain data (no kopf, no kubernetes, no redis, no clock) shared by the operator's poll loop
and the benchmark simulator (bench/autoscale).

model.py holds the data, decide.py the order of the rules, and one module per rule:
latency.py (targetWaitSeconds), limits.py (stabilisation window and rate limits), gate.py
(the failure gate).
"""

from jobqueue_operator.scaling.decide import decide
from jobqueue_operator.scaling.model import (
    Decision,
    Policy,
    QueueMetrics,
    RateLimit,
    Reason,
    Replicas,
    ScaleRule,
    ScalingState,
)
from jobqueue_operator.scaling.signals import ALL_SIGNALS, Signal

__all__ = [
    "ALL_SIGNALS",
    "Decision",
    "Policy",
    "QueueMetrics",
    "RateLimit",
    "Reason",
    "Replicas",
    "ScaleRule",
    "ScalingState",
    "Signal",
    "decide",
]
