"""Section 2 of the benchmark: every trace through every policy, into out/autoscale.json + plots."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict
from typing import Any

from bench.autoscale import baseline, policies, workload
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
    """Ours with the trace's spec (defaults unless the trace sets some), the other failure
    actions where a dependency fails, KEDA + HPA, and a fixed fleet."""
    ours = w.trace.ours
    chosen: list[policies.ScalingPolicy] = [
        policies.Ours(cluster.concurrency, MAX_REPLICAS, name="ours", **ours)
    ]
    if w.trace.outage is not None:
        for name, action in (("ours-hold", "Hold"), ("ours-scale-to-min", "ScaleToMin")):
            gate = {"failureRate": {"action": action}}
            chosen.append(
                policies.Ours(cluster.concurrency, MAX_REPLICAS, name=name, **ours, **gate)
            )
    return [
        *chosen,
        policies.KedaHpa(max_replicas=MAX_REPLICAS),
        policies.FixedFleet(fixed_fleet_size(w, cluster)),
    ]


def cluster_for(trace: workload.Trace) -> Cluster:
    return dataclasses.replace(Cluster(), **trace.cluster)


def _downsample(samples: dict[str, list[float]], points: int = 600) -> dict[str, list[float]]:
    step = max(1, len(samples["t"]) // points)
    return {k: v[::step] for k, v in samples.items()}


def run(full: bool, plot_dir: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "seed": SEED,
        "cluster": asdict(Cluster()),
        "ours_gate": policies.default_gate(),
        "baseline": baseline.load("full" if full else "quick"),
        "traces": {},
    }
    for trace in workload.standard_traces(full):
        w = workload.build(trace, SEED)
        cluster = cluster_for(trace)
        print(f"autoscale: {trace.name} ({len(w.arrivals)} jobs)", flush=True)
        results: list[Result] = []
        entry: dict[str, Any] = {
            "description": trace.description,
            "jobs": len(w.arrivals),
            "mean_duration": w.mean_duration,
            "horizon": trace.horizon,
            "outage": trace.outage,
            "trouble": trace.trouble,
            "steady": trace.steady,
            "slow_failures": trace.slow_failures,
            "cluster": trace.cluster,
            "ours_scaling": trace.ours,
            "policies": {},
        }
        for policy in policy_set(w, cluster):
            result = simulate(w, policy, cluster)
            results.append(result)
            summary = result.summary()
            if isinstance(policy, policies.Ours):
                summary["reasons"] = policy.reasons
                summary["gate_changes"] = policy.gate_changes
            if isinstance(policy, policies.FixedFleet):
                summary["fleet"] = policy.replicas
            summary["samples"] = _downsample(result.samples)
            entry["policies"][policy.name] = summary
            print(
                f"  {policy.name:18s} wait p95 {result.wait_p95:7.1f} s  replica-s "
                f"{result.replica_seconds:9.0f}  killed {result.killed_by_scale_down:4d}  "
                f"failed attempts {result.failed_attempts}  dead {result.dead_lettered}  "
                f"events/h {result.scale_events_per_hour:.1f}  peak {result.max_replicas}  "
                f"trouble pods {result.pods_at_trouble}->{result.peak_pods_in_trouble} "
                f"(ready {result.peak_ready_in_trouble})",
                flush=True,
            )
        out["traces"][trace.name] = entry
    return out
