"""RESULTS.md section 2: the simulated autoscaler against KEDA + HPA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.render import meta, num, table


def section(data: dict[str, Any], plots: list[Path], base: Path) -> list[str]:
    lines = ["## 2. The autoscaler against KEDA + HPA (simulated)", "", *meta(data)]
    if "error" in data:
        return [*lines, f"Section failed: {data['error']}", ""]
    c = data["cluster"]
    lines += [
        f"Discrete-event simulation (bench/autoscale), seed {data['seed']}: lognormal job "
        "durations (median 1 s, sigma 1.5: mean ~3 s, p99 ~33 s, capped at 15 min), "
        f"{c['concurrency']} jobs per pod, pods ready {c['pod_start_seconds']:g} s after "
        f"creation, {c['max_attempts']} attempts with exponential backoff from "
        f"{c['backoff_base']:g} s; while a dependency is down every attempt fails after "
        f"{c['failed_attempt_seconds']:g} s. Metrics cover the trace plus "
        f"{c['tail_seconds'] / 60:g} min. Wait = first start - arrival (jobs never "
        "started count up to the end). Replica-seconds include starting and draining pods.",
        "",
        "- **ours**: the operator's `decide()` imported from jobqueue_operator.scaling with the "
        "policy `policy_from_spec` makes of a JobQueue with defaults (poll 2 s, backlog target = "
        "concurrency, 60 s scale-down window, failure gate Hold at 50 % of >= 20 attempts in 60 s) "
        "and maxReplicas 100; removes the least busy pods (pod-deletion-cost), 60 s drain, "
        "unfinished jobs released at once.",
        "- **ours-scale-to-min**: the same with `failureRate.action: ScaleToMin`.",
        "- **keda-hpa**: KEDA Redis list scaler (listLength 5, activation 0, polling 30 s, "
        "cooldown 300 s) + HPA (sync 15 s, tolerance 0.1, up max(+100 %, +4)/15 s, down window "
        "300 s), max 100; sees only the waiting list; the ReplicaSet removes the newest ready "
        "pods, 30 s grace, then a cut job returns after a 30 s stalled-job check.",
        "- **fixed-peak**: a fixed fleet sized for the busiest minute at 80 % utilisation.",
        "",
    ]
    header = ["policy", "wait p50 s", "p95 s", "p99 s", "replica-s", "peak pods", "killed by "
              "scale-down", "failed attempts", "dead-lettered", "completed"]  # fmt: skip
    verdicts = []
    for trace, entry in data["traces"].items():
        lines += [f"### {trace}: {entry['description']} ({entry['jobs']:,} jobs)", ""]
        rows = []
        for name, r in entry["policies"].items():
            label = name + (f" ({r['fleet']} pods)" if "fleet" in r else "")
            rows.append([
                label, num(r["wait_p50"], 1), num(r["wait_p95"], 1), num(r["wait_p99"], 1),
                num(r["replica_seconds"]), str(r["max_replicas"]), str(r["killed_by_scale_down"]),
                num(r["failed_attempts"]), num(r["dead_lettered"]), num(r["completed"]),
            ])  # fmt: skip
        lines += table(header, rows)
        plot = next((p for p in plots if p.stem == f"autoscale-{trace}"), None)
        if plot is not None:
            lines += ["", f"![{trace}]({plot.relative_to(base).as_posix()})"]
        lines.append("")
        ours, keda = entry["policies"].get("ours"), entry["policies"].get("keda-hpa")
        if ours and keda:
            ok_wait = ours["wait_p95"] <= 0.5 * keda["wait_p95"]
            ok_cost = ours["replica_seconds"] <= keda["replica_seconds"]
            verdicts.append(
                f"- {trace}: p95 wait {ours['wait_p95']:.1f} s vs KEDA {keda['wait_p95']:.1f} s "
                f"({'met' if ok_wait else 'NOT met'}: <= half), replica-seconds "
                f"{ours['replica_seconds']:,.0f} vs {keda['replica_seconds']:,.0f} "
                f"({'met' if ok_cost else 'NOT met'}: no more)"
            )
            if entry.get("outage"):
                s2m = entry["policies"].get("ours-scale-to-min", {})
                verdicts.append(
                    f"- {trace} wasted attempts: ours {ours['failed_attempts']:,}, "
                    f"ours-scale-to-min {s2m.get('failed_attempts', 0):,}, KEDA "
                    f"{keda['failed_attempts']:,}"
                )
    return [*lines, "Targets (ours with defaults against KEDA + HPA):", "", *verdicts, ""]
