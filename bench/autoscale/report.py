"""RESULTS.md section 2: the simulated autoscaler against KEDA + HPA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.render import meta, num, table

FAR_FEWER = 0.1  # "far fewer wasted attempts" read as at most a tenth of KEDA's


def secs(value: float | None, unit: str = "") -> str:
    """A time to success; None means some of the jobs at that percentile never succeeded."""
    return "never" if value is None else num(value, 1) + unit


def gate_text(gate: dict[str, Any] | None) -> str:
    if not gate:
        return "failure gate with its defaults"
    return (
        f"failure gate {gate['action']} at {gate['threshold']:.0%} failed of >= "
        f"{gate['minSamples']} attempts in {gate['windowSeconds']} s, clearing at "
        f"{gate['recoveryThreshold']:.0%}"
    )


def storm_table(entry: dict[str, Any]) -> list[str]:
    """What users feel in a failure storm, by when their job arrived."""
    start, end = (t / 60 for t in entry["outage"])
    header = ["policy", "before: wait p95 s", "before: success p95 s", "during: wait p95 s",
              "during: success p50 s", "during: success p95 s", "during: never succeeded",
              "after: wait p95 s", "all: success p95 s", "dead-lettered"]  # fmt: skip
    rows = []
    for name, r in entry["policies"].items():
        ph = r.get("phases") or {}
        if not ph:
            continue
        b, d, a = ph["before"], ph["during"], ph["after"]
        rows.append([
            name, num(b["wait_p95"], 1), secs(b["done_p95"]), num(d["wait_p95"], 1),
            secs(d["done_p50"]), secs(d["done_p95"]), f"{d['never_succeeded']:,} of {d['jobs']:,}",
            num(a["wait_p95"], 1), secs(r.get("done_p95")), num(r["dead_lettered"]),
        ])  # fmt: skip
    if not rows:
        return []
    return [
        f"What users feel, by arrival: before the outage (< {start:g} min), during it, after "
        f"it (>= {end:g} min). Success = arrival to the end of the attempt that succeeded; "
        "never = dead-lettered or unfinished (a percentile that lands on such a job reads "
        "never). Wait = arrival to the first attempt, failed or not.",
        "",
        *table(header, rows),
        "",
        "While the dependency is down every attempt fails, so a job that arrives then can "
        "start early only by spending attempts it needs after the recovery: a low wait there "
        "buys a dead letter. Backoff (our default) keeps those jobs queued behind a probe pod "
        "and runs them once the probe succeeds, so their wait is long (and with it the "
        "trace's plain p95) but they get done.",
        "",
    ]


def verdicts(trace: str, entry: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Verdict lines for one trace and the names of the targets it misses."""
    ours, keda = entry["policies"].get("ours"), entry["policies"].get("keda-hpa")
    if not (ours and keda):
        return [], []
    ok_wait = ours["wait_p95"] <= 0.5 * keda["wait_p95"]
    ok_cost = ours["replica_seconds"] <= keda["replica_seconds"]
    lines = [
        f"- {trace}: p95 wait {ours['wait_p95']:.1f} s vs KEDA {keda['wait_p95']:.1f} s "
        f"({'met' if ok_wait else 'NOT met'}: <= half), replica-seconds "
        f"{ours['replica_seconds']:,.0f} vs {keda['replica_seconds']:,.0f} "
        f"({'met' if ok_cost else 'NOT met'}: no more)"
    ]
    missed = [f"{trace} p95 wait"] * (not ok_wait) + [f"{trace} replica-seconds"] * (not ok_cost)
    if entry.get("outage"):
        ok_waste = ours["failed_attempts"] <= FAR_FEWER * keda["failed_attempts"]
        others = ", ".join(
            f"{name} {r['failed_attempts']:,}"
            for name, r in entry["policies"].items()
            if name.startswith("ours-")
        )
        lines.append(
            f"- {trace} wasted (failed) attempts: ours {ours['failed_attempts']:,} vs KEDA "
            f"{keda['failed_attempts']:,} ({'met' if ok_waste else 'NOT met'}: far fewer, "
            f"read as <= {FAR_FEWER:.0%}); {others}"
        )
        lines.append(
            f"- {trace} outcome: ours dead-letters {ours['dead_lettered']:,} jobs and gets "
            f"{ours['completed']:,} of {entry['jobs']:,} done (success p95 "
            f"{secs(ours.get('done_p95'), ' s')}); KEDA dead-letters {keda['dead_lettered']:,} "
            f"and gets {keda['completed']:,} done (success p95 {secs(keda.get('done_p95'), ' s')})"
        )
        missed += [f"{trace} wasted attempts"] * (not ok_waste)
    return lines, missed


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
        f"concurrency, 60 s scale-down window, {gate_text(data.get('ours_gate'))}) "
        "and maxReplicas 100; removes the least busy pods (pod-deletion-cost), 60 s drain, "
        "unfinished jobs released at once.",
        "- **ours-hold**, **ours-scale-to-min**: the same with `failureRate.action: Hold` "
        "(the default before Backoff) or `ScaleToMin`.",
        "- **keda-hpa**: KEDA Redis list scaler (listLength 5, activation 0, polling 30 s, "
        "cooldown 300 s) + HPA (sync 15 s, tolerance 0.1, up max(+100 %, +4)/15 s, down window "
        "300 s), max 100; sees only the waiting list; the ReplicaSet removes the newest ready "
        "pods, 30 s grace, then a cut job returns after a 30 s stalled-job check.",
        "- **fixed-peak**: a fixed fleet sized for the busiest minute at 80 % utilisation.",
        "",
    ]
    header = ["policy", "wait p50 s", "p95 s", "p99 s", "success p95 s", "replica-s",
              "peak pods", "killed by scale-down", "failed attempts", "dead-lettered",
              "completed"]  # fmt: skip
    verdict_lines: list[str] = []
    missed: list[str] = []
    for trace, entry in data["traces"].items():
        lines += [f"### {trace}: {entry['description']} ({entry['jobs']:,} jobs)", ""]
        rows = []
        for name, r in entry["policies"].items():
            label = name + (f" ({r['fleet']} pods)" if "fleet" in r else "")
            rows.append([
                label, num(r["wait_p50"], 1), num(r["wait_p95"], 1), num(r["wait_p99"], 1),
                secs(r.get("done_p95")), num(r["replica_seconds"]), str(r["max_replicas"]),
                str(r["killed_by_scale_down"]),
                num(r["failed_attempts"]), num(r["dead_lettered"]), num(r["completed"]),
            ])  # fmt: skip
        lines += table(header, rows)
        plot = next((p for p in plots if p.stem == f"autoscale-{trace}"), None)
        if plot is not None:
            lines += ["", f"![{trace}]({plot.relative_to(base).as_posix()})"]
        lines.append("")
        if entry.get("outage"):
            lines += storm_table(entry)
        trace_lines, trace_missed = verdicts(trace, entry)
        verdict_lines += trace_lines
        missed += trace_missed
    summary = "all met" if not missed else "NOT met: " + ", ".join(missed)
    return [
        *lines,
        "Targets (ours with defaults against KEDA + HPA):",
        "",
        *verdict_lines,
        f"- In short: {summary}.",
        "",
    ]
