"""Section 2 of the benchmark: every trace through every policy, into out/autoscale.json + plots."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from bench.autoscale import policies, workload
from bench.autoscale.sim import Cluster, Result, simulate

SEED = 20260601
MAX_REPLICAS = 100  # the same ceiling for every policy (KEDA's default maxReplicaCount)
TARGET_UTILISATION = 0.8  # the fixed fleet's headroom at the trace's peak minute


def fixed_fleet_size(w: workload.Workload, cluster: Cluster) -> int:
    """Pods a fixed fleet needs to serve the busiest minute at 80 % utilisation."""
    arrivals, busiest, start = w.arrivals, 0, 0
    for end, t in enumerate(arrivals):  # sliding 60 s window over the sorted arrivals
        while arrivals[start] <= t - 60:
            start += 1
        busiest = max(busiest, end - start + 1)
    load = busiest / 60 * w.mean_duration / cluster.concurrency
    return max(1, min(MAX_REPLICAS, math.ceil(load / TARGET_UTILISATION)))


def policy_set(w: workload.Workload, cluster: Cluster) -> list[policies.ScalingPolicy]:
    return [
        policies.Ours(cluster.concurrency, MAX_REPLICAS, name="ours"),
        policies.Ours(
            cluster.concurrency, MAX_REPLICAS, name="ours-hold", failureRate={"action": "Hold"}
        ),
        policies.Ours(
            cluster.concurrency,
            MAX_REPLICAS,
            name="ours-scale-to-min",
            failureRate={"action": "ScaleToMin"},
        ),
        policies.KedaHpa(max_replicas=MAX_REPLICAS),
        policies.FixedFleet(fixed_fleet_size(w, cluster)),
    ]


def _downsample(samples: dict[str, list[float]], points: int = 600) -> dict[str, list[float]]:
    step = max(1, len(samples["t"]) // points)
    return {k: v[::step] for k, v in samples.items()}


def run(full: bool, plot_dir: Any = None) -> dict[str, Any]:
    cluster = Cluster()
    out: dict[str, Any] = {
        "seed": SEED,
        "cluster": asdict(cluster),
        "ours_gate": policies.default_gate(),
        "traces": {},
    }
    for trace in workload.standard_traces(full):
        w = workload.build(trace, SEED)
        print(f"autoscale: {trace.name} ({len(w.arrivals)} jobs)", flush=True)
        results: list[Result] = []
        entry: dict[str, Any] = {
            "description": trace.description,
            "jobs": len(w.arrivals),
            "mean_duration": w.mean_duration,
            "horizon": trace.horizon,
            "outage": trace.outage,
            "policies": {},
        }
        for policy in policy_set(w, cluster):
            result = simulate(w, policy, cluster)
            results.append(result)
            summary = result.summary()
            if isinstance(policy, policies.Ours):
                summary["reasons"] = policy.reasons
            if isinstance(policy, policies.FixedFleet):
                summary["fleet"] = policy.replicas
            summary["samples"] = _downsample(result.samples)
            entry["policies"][policy.name] = summary
            print(
                f"  {policy.name:18s} wait p95 {result.wait_p95:7.1f} s  replica-s "
                f"{result.replica_seconds:9.0f}  killed {result.killed_by_scale_down:4d}  "
                f"failed attempts {result.failed_attempts}",
                flush=True,
            )
        out["traces"][trace.name] = entry
    return out
