"""RESULTS.md section 2: the simulated autoscaler against KEDA + HPA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.render import meta, num, table

FAR_FEWER = 0.1  # "far fewer wasted attempts" read as at most a tenth of KEDA's
A_FEW_PER_HOUR = 6.0  # "a few scale events per hour" on a steady load after warm-up


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


def trouble_table(entry: dict[str, Any], before: dict[str, Any] | None) -> list[str]:
    """The fleet while the trouble lasts: pods at its start, the most pods, the most ready."""
    span = entry.get("trouble")
    if not span:
        return []
    rows = []
    figures = dict(entry["policies"])
    if before is not None:
        figures[f"ours before ({before['label']})"] = before
    for name, r in figures.items():
        if r.get("pods_at_trouble") is None:
            continue
        changes = r.get("gate_changes")
        rows.append([
            name, f"{r['pods_at_trouble']} ({r.get('ready_at_trouble', '-')})",
            str(r["peak_pods_in_trouble"]), str(r["peak_ready_in_trouble"]),
            "-" if changes is None else str(changes),
        ])  # fmt: skip
    header = ["policy", "pods (ready) at the start", "most pods during", "most ready during",
              "failure gate changes (whole trace)"]  # fmt: skip
    return [
        f"The fleet from {span[0] / 60:g} to {span[1] / 60:g} min (pods count starting and "
        "draining ones):",
        "",
        *table(header, rows),
        "",
    ]


def verdicts(
    trace: str, entry: dict[str, Any], before: dict[str, Any] | None = None
) -> tuple[list[str], list[str]]:
    """Verdict lines for one trace and the names of the targets it misses. ``before`` holds
    the stored figures of the earlier decide() for this trace, if any."""
    ours, keda = entry["policies"].get("ours"), entry["policies"].get("keda-hpa")
    if not (ours and keda):
        return [], []
    ok_wait = ours["wait_p95"] <= 0.5 * keda["wait_p95"]
    ok_cost = ours["replica_seconds"] <= keda["replica_seconds"]
    lines = [
        f"- {trace}: p95 wait {ours['wait_p95']:.1f} s vs KEDA {keda['wait_p95']:.1f} s "
        f"({'met' if ok_wait else 'NOT met'}: <= half), replica-seconds "
        f"{ours['replica_seconds']:,.0f} vs {keda['replica_seconds']:,.0f} "
        f"({'met' if ok_cost else 'NOT met'}: no more); scale events/h "
        f"{ours.get('scale_events_per_hour', 0):.1f} vs KEDA "
        f"{keda.get('scale_events_per_hour', 0):.1f}"
        + (f" (before: {before['scale_events_per_hour']:.1f})" if before else "")
    ]
    missed = [f"{trace} p95 wait"] * (not ok_wait) + [f"{trace} replica-seconds"] * (not ok_cost)
    if entry.get("steady"):
        rate = ours.get("scale_events_per_hour", 0.0)
        ok_steady = rate <= A_FEW_PER_HOUR
        lines.append(
            f"- {trace} settles: {rate:.1f} scale events per hour after warm-up "
            f"({'met' if ok_steady else 'NOT met'}: at most {A_FEW_PER_HOUR:g})"
        )
        missed += [f"{trace} settling"] * (not ok_steady)
    if entry.get("outage"):
        lines_, missed_ = _storm_verdicts(trace, entry, ours, keda, before)
        lines += lines_
        missed += missed_
    return lines, missed


def _storm_verdicts(
    trace: str,
    entry: dict[str, Any],
    ours: dict[str, Any],
    keda: dict[str, Any],
    before: dict[str, Any] | None,
) -> tuple[list[str], list[str]]:
    ok_dead = ours["dead_lettered"] <= keda["dead_lettered"]
    # Slow failures: a probe spends far fewer attempts than a fleet. Fast ones: fewer.
    far = bool(entry.get("slow_failures"))
    share = FAR_FEWER if far else 1.0
    ok_waste = ours["failed_attempts"] <= share * keda["failed_attempts"]
    others = ", ".join(
        f"{name} {r['failed_attempts']:,}"
        for name, r in entry["policies"].items()
        if name.startswith("ours-")
    )
    target = f"far fewer, read as <= {FAR_FEWER:.0%}" if far else "no more"
    lines = [
        f"- {trace} wasted (failed) attempts: ours {ours['failed_attempts']:,} vs KEDA "
        f"{keda['failed_attempts']:,} ({'met' if ok_waste else 'NOT met'}: {target}); "
        f"{others}",
        f"- {trace} outcome: ours dead-letters {ours['dead_lettered']:,} jobs and gets "
        f"{ours['completed']:,} of {entry['jobs']:,} done (success p95 "
        f"{secs(ours.get('done_p95'), ' s')}); KEDA dead-letters {keda['dead_lettered']:,} "
        f"and gets {keda['completed']:,} done (success p95 {secs(keda.get('done_p95'), ' s')}) "
        f"({'met' if ok_dead else 'NOT met'}: no more dead letters than KEDA)",
    ]
    missed = [f"{trace} wasted attempts"] * (not ok_waste)
    if before is not None:
        fewer = (
            ours["dead_lettered"] <= before["dead_lettered"]
            and ours["failed_attempts"] <= before["failed_attempts"]
        )
        lines.append(
            f"- {trace} against before ({before['label']}): dead-lettered "
            f"{ours['dead_lettered']:,} (was {before['dead_lettered']:,}), failed attempts "
            f"{ours['failed_attempts']:,} (was {before['failed_attempts']:,}) "
            f"({'met' if fewer else 'NOT met'}: no more of either)"
        )
        missed += [f"{trace} against before"] * (not fewer)
    missed += [f"{trace} dead letters vs KEDA"] * (not ok_dead)
    start, peak = ours.get("ready_at_trouble"), ours.get("peak_ready_in_trouble")
    if start is not None and peak is not None:
        still = peak <= start
        lines.append(
            f"- {trace} fleet while the dependency is down: {start} ready pods at the start, "
            f"at most {peak} ready during it ({'met' if still else 'NOT met'}: never grows); "
            f"the Deployment asked for at most {ours['peak_pods_in_trouble']} pods, the extra "
            "ones removed before they were ready"
        )
        missed += [f"{trace} fleet growth"] * (not still)
    return lines, missed


def section(data: dict[str, Any], plots: list[Path], base: Path) -> list[str]:
    lines = ["## 2. The autoscaler against KEDA + HPA (simulated)", "", *meta(data)]
    if "error" in data:
        return [*lines, f"Section failed: {data['error']}", ""]
    c = data["cluster"]
    stored = data.get("baseline") or {}
    lines += [
        f"Discrete-event simulation (bench/autoscale), seed {data['seed']}: lognormal job "
        "durations (median 1 s, sigma 1.5: mean ~3 s, p99 ~33 s, capped at 15 min), "
        f"{c['concurrency']} jobs per pod, pods ready {c['pod_start_seconds']:g} s after "
        f"creation, {c['max_attempts']} attempts with exponential backoff from "
        f"{c['backoff_base']:g} s; while a dependency is down every attempt fails after "
        f"{c['failed_attempt_seconds']:g} s. A trace may change some of these (said under its "
        f"title). Metrics cover the trace plus {c['tail_seconds'] / 60:g} min. Wait = first "
        "start - arrival (jobs never started count up to the end). Replica-seconds include "
        "starting and draining pods. Scale events/h = changes of the replica count per hour "
        f"of arrivals after the first {c.get('warmup_seconds', 600) / 60:g} min.",
        "",
        "- **ours**: the operator's `decide()` imported from jobqueue_operator.scaling with the "
        "policy `policy_from_spec` makes of a JobQueue with defaults (poll 2 s, backlog target = "
        f"concurrency, 60 s scale-down window, scale-down at most 50 % per 30 s, "
        f"{gate_text(data.get('ours_gate'))}) and maxReplicas 100, plus what the trace sets; "
        "removes the least busy pods (pod-deletion-cost), 60 s drain, unfinished jobs released "
        "at once.",
        "- **ours-hold**, **ours-scale-to-min**: the same with `failureRate.action: Hold` "
        "or `ScaleToMin` (traces where a dependency fails).",
        "- **keda-hpa**: KEDA Redis list scaler (listLength 5, activation 0, polling 30 s, "
        "cooldown 300 s) + HPA (sync 15 s, tolerance 0.1, up max(+100 %, +4)/15 s, down window "
        "300 s), max 100; sees only the waiting list; holds while Redis or its operator is "
        "down; the ReplicaSet removes the newest ready pods, 30 s grace, then a cut job returns "
        "after a 30 s stalled-job check.",
        "- **fixed-peak**: a fixed fleet sized for the busiest minute at 80 % utilisation.",
    ]
    if stored:
        lines.append(
            f"- **ours before**: stored figures of `ours` measured with the decide() of "
            f"{stored['label']} by this simulator (bench/autoscale/baseline.py)."
        )
    lines.append("")
    header = ["policy", "wait p50 s", "p95 s", "p99 s", "success p95 s", "replica-s",
              "scale events/h", "peak pods", "killed by scale-down", "failed attempts",
              "dead-lettered", "completed"]  # fmt: skip
    verdict_lines: list[str] = []
    missed: list[str] = []
    for trace, entry in data["traces"].items():
        before = (stored.get("traces") or {}).get(trace)
        if before is not None:
            before = {**before, "label": stored["label"]}
        lines += [f"### {trace}: {entry['description']} ({entry['jobs']:,} jobs)", ""]
        if entry.get("cluster") or entry.get("ours_scaling"):
            changed = ", ".join(f"{k} {v}" for k, v in (entry.get("cluster") or {}).items())
            ours_spec = ", ".join(f"{k} {v}" for k, v in (entry.get("ours_scaling") or {}).items())
            lines += [
                "Changed for this trace: "
                + "; ".join(
                    part
                    for part in (
                        f"simulated cluster: {changed}" if changed else "",
                        f"ours' spec.scaling: {ours_spec}" if ours_spec else "",
                    )
                    if part
                )
                + ".",
                "",
            ]
        rows = []
        for name, r in entry["policies"].items():
            label = name + (f" ({r['fleet']} pods)" if "fleet" in r else "")
            rows.append(_row(label, r))
        if before is not None:
            rows.append(_row("ours before", before, partial=True))
        lines += table(header, rows)
        plot = next((p for p in plots if p.stem == f"autoscale-{trace}"), None)
        if plot is not None:
            lines += ["", f"![{trace}]({plot.relative_to(base).as_posix()})"]
        lines.append("")
        lines += trouble_table(entry, before)
        if entry.get("outage"):
            lines += storm_table(entry)
        trace_lines, trace_missed = verdicts(trace, entry, before)
        verdict_lines += trace_lines
        missed += trace_missed
    summary = "all met" if not missed else "NOT met: " + ", ".join(missed)
    return [
        *lines,
        "Targets (ours with defaults against KEDA + HPA, and against before):",
        "",
        *verdict_lines,
        f"- In short: {summary}.",
        "",
    ]


def _row(label: str, r: dict[str, Any], partial: bool = False) -> list[str]:
    """One table row; a stored row (``partial``) has no p50/p99 nor kill counts."""

    def opt(key: str, digits: int = 0) -> str:
        return num(r.get(key), digits) if key in r else "-"

    return [
        label, opt("wait_p50", 1), num(r["wait_p95"], 1), opt("wait_p99", 1),
        secs(r.get("done_p95")), num(r["replica_seconds"]),
        num(r.get("scale_events_per_hour"), 1), str(r["max_replicas"]),
        "-" if partial else str(r["killed_by_scale_down"]),
        num(r["failed_attempts"]), num(r["dead_lettered"]), num(r["completed"]),
    ]  # fmt: skip
