"""RESULTS.md section 3: the operator on the local cluster."""

from __future__ import annotations

from typing import Any

from jobqueue_operator.status_writer import STATUS_REFRESH_MIN_FRACTION, STATUS_REFRESH_SECONDS

from bench.render import meta, num, table

TARGET_QUEUES, TARGET_CORES, TARGET_MB = 1000, 0.25, 250.0
# Issue 20's targets for the scale-only runs (python -m bench.operator).
SCALE_TARGET_CORES, SCALE_TARGET_MB, POLL_INTERVAL = 0.1, 150.0, 2.0
SCALE_RUNS_TITLE = "### Scale runs (`python -m bench.operator`)"


def split_scale_runs(lines: list[str]) -> tuple[list[str], list[str]]:
    """A rendered section 3 split before its scale-runs part (rendered apart from the
    rest: each comes from its own JSON)."""
    if SCALE_RUNS_TITLE in lines:
        at = lines.index(SCALE_RUNS_TITLE)
        return lines[:at], lines[at:]
    return lines, []


def scale_runs(runs: list[dict[str, Any]]) -> list[str]:
    """The scale-only runs side by side: one row per run and JobQueue count."""
    lines = [
        SCALE_RUNS_TITLE,
        "",
        "Scale rows alone, each row growing from the one before (empty queues, Deployments at "
        "0 replicas), measured after the poll rate settled; load = the machine's 1-minute "
        "load average at the window's start and end (2 cores, shared).",
        "",
    ]
    header = ["run", "JobQueues", "operator CPU (cores)", "RSS MB start / end / peak",
              "poll lag p50 / p99 / max s", "polls/s done / due", "status writes/s",
              "Redis commands per poll", "load start / end", "window s"]  # fmt: skip
    rows = []
    for run in runs:
        for s in run.get("scale", []):
            load0, load1 = s.get("load_start") or [None], s.get("load_end") or [None]
            rows.append([
                str(run.get("label", "")), f"{s['jobqueues']:,}", num(s.get("cpu_cores"), 3),
                " / ".join(num(s.get(k), 0) for k in ("rss_start_mb", "rss_end_mb", "rss_mb")),
                " / ".join(num(s.get(k), 3) for k in
                           ("poll_lag_p50", "poll_lag_p99", "poll_lag_max")),
                f"{num(s.get('polls_per_s'), 1)} / {num(s.get('expected_polls_per_s'), 0)}",
                num(s.get("status_writes_per_s"), 1), num(s.get("redis_commands_per_poll"), 1),
                f"{num(load0[0], 2)} / {num(load1[0], 2)}", num(s.get("window"), 0),
            ])  # fmt: skip
    lines += [*table(header, rows), ""]
    for run in runs:
        meta = run.get("meta", {})
        lines.append(f"- {run.get('label', '')}: `{meta.get('command', '')}` at "
                     f"{meta.get('started', '?')}" + (f"; stopped early: {run['error'][:300]}"
                                                      if "error" in run else ""))  # fmt: skip
        for s in run.get("scale", []):
            lines.append(f"  - {s['jobqueues']:,} JobQueues: {s.get('note', '')}")
    lines.append("")
    for run in runs:
        for s in run.get("scale", []):
            cores, mb = s.get("cpu_cores") or 99.0, s.get("rss_mb") or 9999.0
            p99 = s.get("poll_lag_p99")
            if s["jobqueues"] == TARGET_QUEUES:
                met = cores <= SCALE_TARGET_CORES and mb <= SCALE_TARGET_MB
                lines.append(
                    f"{run.get('label', '')}, {TARGET_QUEUES:,} JobQueues at most "
                    f"{SCALE_TARGET_CORES} core and {SCALE_TARGET_MB:.0f} MB: "
                    f"{'met' if met else 'NOT met'} ({cores:.3f} core, {mb:.0f} MB peak)."
                )
            elif s["jobqueues"] > TARGET_QUEUES and p99 is not None:
                met = p99 < POLL_INTERVAL
                lines.append(
                    f"{run.get('label', '')}, {s['jobqueues']:,} JobQueues, poll lag p99 under "
                    f"one poll interval ({POLL_INTERVAL:.0f} s): {'met' if met else 'NOT met'} "
                    f"({p99:.3f} s)."
                )
    return [*lines, ""]


def section(data: dict[str, Any]) -> list[str]:
    lines = ["## 3. The operator on the local cluster", "", *meta(data)]
    if "error" in data:  # shown first; what was measured before it still follows
        lines += [f"Stopped early: {data['error']}", ""]
    if "skipped" in data:
        return [*lines, f"Not measured: {data['skipped']}", ""]
    for key in ("reaction", "reaction_fast_poll"):
        reaction = data.get(key, {})
        if not reaction:
            continue
        lines += [
            f"Reaction time, job submitted to an empty queue -> Deployment spec.replicas changes "
            f"({reaction.get('trials', 0)} trials, pollIntervalSeconds "
            f"{reaction.get('poll_interval', '?')}): p50 {num(reaction.get('p50'), 2)} s, p95 "
            f"{num(reaction.get('p95'), 2)} s, max {num(reaction.get('max'), 2)} s "
            f"(target p50 < 1 s: {'met' if (reaction.get('p50') or 99) < 1 else 'not met'}).",
            "",
        ]
    scale = data.get("scale", [])
    if scale:
        header = ["JobQueues", "operator CPU (cores)", "RSS MB before / start / end / peak",
                  "poll lag mean / max s", "polls/s done / due", "status writes/s",
                  "Redis commands/s",
                  "Redis commands per poll", "settled after s", "window s"]  # fmt: skip
        rows = [
            [
                str(s["jobqueues"]), num(s.get("cpu_cores"), 3),
                " / ".join(num(s.get(k), 0) for k in
                           ("rss_before_mb", "rss_start_mb", "rss_end_mb", "rss_mb")),
                f"{num(s.get('poll_lag_mean'), 3)} / {num(s.get('poll_lag_max'), 3)}",
                f"{num(s.get('polls_per_s'), 1)} / {num(s.get('expected_polls_per_s'), 0)}",
                num(s.get("status_writes_per_s"), 1),
                num(s.get("redis_commands_per_s"), 0), num(s.get("redis_commands_per_poll"), 1),
                _settled(s), num(s.get("window"), 0),
            ]
            for s in scale
        ]  # fmt: skip
        lines += [*table(header, rows), ""]
        for s in scale:
            if s.get("note"):
                deleted = f"; deleted in {s['delete_s']:.0f} s" if "delete_s" in s else ""
                lines.append(f"- {s['jobqueues']} JobQueues: {s['note']}{deleted}")
        lines += ["", *_verdict(scale), ""]
    return lines


def _verdict(scale: list[dict[str, Any]]) -> list[str]:
    shortest = STATUS_REFRESH_MIN_FRACTION * STATUS_REFRESH_SECONDS
    mean = (shortest + STATUS_REFRESH_SECONDS) / 2
    refresh = (
        f"An idle JobQueue's status is refreshed every {shortest:.0f}-"
        f"{STATUS_REFRESH_SECONDS:.0f} s, a few minutes after it was created: a window "
        "this soon after creation may hold none of those writes (the status writes/s column "
        f"says); at steady state they add JobQueues / {mean:.0f} "
        "writes/s."
    )
    rows = [s for s in scale if s["jobqueues"] == TARGET_QUEUES]
    verdicts = []
    for row in rows:
        cores, mb = row.get("cpu_cores") or 99.0, row.get("rss_mb") or 9999.0
        met = cores <= TARGET_CORES and mb <= TARGET_MB
        verdicts.append(
            f"Target for {TARGET_QUEUES:,} JobQueues, at most {TARGET_CORES} core and "
            f"{TARGET_MB:.0f} MB: {'met' if met else 'NOT met'} ({cores:.3f} core, {mb:.0f} MB "
            f"peak, {num(row.get('window'), 0)} s window, "
            f"{num(row.get('status_writes_per_s'), 1)} status writes/s)."
        )
    return [*verdicts, "", refresh] if verdicts else [refresh]


def _settled(s: dict[str, Any]) -> str:
    """Seconds until the poll rate settled (older runs did not wait: '-')."""
    if "settle_s" not in s:
        return "-"
    return num(s["settle_s"], 0) + ("" if s.get("settled") else " (not settled)")
