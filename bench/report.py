"""Renders bench/RESULTS.md (and the plots) from the JSON the sections wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OURS = "jobqueue"


def _load(out: Path, name: str) -> dict[str, Any] | None:
    path = out / f"{name}.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _num(value: Any, digits: int = 0) -> str:
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}"
    if value is None:
        return "-"
    text = str(value)
    return text if len(text) < 60 else text[:57] + "..."


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return lines


def _meta(section: dict[str, Any]) -> list[str]:
    meta = section.get("meta", {})
    m = meta.get("machine", {})
    load = ", ".join(f"{x:.2f}" for x in m.get("load_average", []))
    return [
        f"Run `{meta.get('command', '?')}` ({meta.get('mode', '?')} mode) at "
        f"{meta.get('started', '?')} UTC, took {meta.get('seconds', '?')} s.",
        f"Machine: {m.get('nproc', '?')} cores, {m.get('cpu_model', '?')}, {m.get('memory', '?')} "
        f"memory, load average at start {load}; Linux {m.get('kernel', '?')}, Python "
        f"{m.get('python', '?')}, {m.get('redis_server', '?')}, Node {m.get('node', '?')}.",
        "",
    ]


def queues_section(data: dict[str, Any]) -> list[str]:
    lines = ["## 1. Queue throughput and latency", "", *_meta(data)]
    if "error" in data:
        return [*lines, f"Section failed: {data['error']}", ""]
    settings = data["settings"]
    versions = ", ".join(f"{k} {v}" for k, v in data.get("versions", {}).items())
    lines += [
        f"{settings['jobs']:,} no-op jobs per throughput row, {settings['sleep_jobs']:,} jobs per "
        f"10 ms sleep row, {settings['latency_samples']} latency samples (a job every 5 ms to an "
        "idle worker at concurrency 10), one redis-server (no persistence) shared by all, "
        "FLUSHALL between rows. Processing rate = jobs done / (last job end - first job start), "
        "jobs enqueued before the workers start; a row stops counting "
        f"{settings.get('measure_seconds', '?')} s after its first job started (slow systems). "
        "Every Python system runs from one virtualenv "
        f"(bench/out/venv). Versions: {versions}.",
        "",
    ]
    systems: dict[str, Any] = data["systems"]
    scenarios = [s for s in data["scenarios"] if s[0] not in ("latency", "round_trips")]
    header = ["system", *[label for _, label in scenarios], "latency p50 / p99 (ms)"]
    rows = []
    for name, res in systems.items():
        if "error" in res:
            rows.append([name, f"not run: {res['error']}"] + [""] * len(scenarios))
            continue
        lat = res.get("latency")
        lat_text = (
            f"{lat['p50_ms']:.2f} / {lat['p99_ms']:.2f}" if isinstance(lat, dict) else _num(lat)
        )
        rows.append([name, *[_num(res.get(key)) for key, _ in scenarios], lat_text])
    lines += _table(header, rows)
    lines += ["", "Settings per system:", ""]
    lines += [f"- **{name}**: {res.get('notes', '')}" for name, res in systems.items()]
    lines += ["", *_ratios(systems, scenarios), ""]
    lines += _round_trips(systems)
    lines += _bound(data, systems)
    return lines


def _ratios(systems: dict[str, Any], scenarios: list[list[str]]) -> list[str]:
    ours = systems.get(OURS, {})
    out = ["Ours against the best other system per row:", ""]
    for key, label in scenarios:
        mine = ours.get(key)
        others = {
            n: r.get(key)
            for n, r in systems.items()
            if n != OURS and isinstance(r.get(key), int | float)
        }
        if not isinstance(mine, int | float) or not others:
            continue
        best = max(others, key=lambda n: others[n])
        out.append(f"- {label}: {mine / others[best]:.2f}x {best} ({_num(others[best])})")
    lat = ours.get("latency")
    if isinstance(lat, dict):
        out.append(
            f"- enqueue-to-start p50 {lat['p50_ms']:.2f} ms (target <= 1 ms: "
            f"{'met' if lat['p50_ms'] <= 1 else 'not met'})"
        )
    best_noop = max(
        (v for k, v in ours.items() if k.startswith("noop_c") and isinstance(v, float)),
        default=None,
    )
    if best_noop is not None:
        met = "met" if best_noop >= 10_000 else "not met"
        out.append(
            f"- best no-op rate of one process {best_noop:,.0f} jobs/s (target >= 10,000: {met})"
        )
    return out


def _round_trips(systems: dict[str, Any]) -> list[str]:
    rows = []
    for name, res in systems.items():
        rt = res.get("round_trips")
        if isinstance(rt, dict):
            rows.append(
                [
                    name,
                    f"{rt['enqueue_client_cmds_per_job']:.2f}",
                    f"{rt['enqueue_script_cmds_per_job']:.1f}",
                    f"{rt['process_client_cmds_per_job']:.2f}",
                    f"{rt['process_script_cmds_per_job']:.1f}",
                ]
            )
    if not rows:
        return []
    header = ["system", "enqueue: client cmds/job", "enqueue: in scripts",
              "process: client cmds/job", "process: in scripts"]  # fmt: skip
    return [
        "Redis commands per job, counted with MONITOR on a separate small run (client commands are "
        "round trips unless pipelined; commands inside Lua scripts run in the server):",
        "",
        *_table(header, rows),
        "",
    ]


def _bound(data: dict[str, Any], systems: dict[str, Any]) -> list[str]:
    rb = data.get("redis_benchmark", {})
    if not rb:
        return []
    rows = [[k, _num(v)] for k, v in rb.items() if isinstance(v, int | float)]
    lines = [
        "redis-benchmark on the same server (requests/s; c50 = 50 connections, c1 = one, P16 = "
        "16-deep pipelining):",
        "",
        *_table(["test", "requests/s"], rows),
        "",
    ]
    if "error" in rb:
        lines += [f"redis-benchmark: {rb['error']}", ""]
    ours = systems.get(OURS, {})
    rt, evalsha = ours.get("round_trips"), rb.get("EVALSHA_c50")
    if (
        isinstance(rt, dict)
        and isinstance(evalsha, int | float)
        and rt["process_client_cmds_per_job"]
    ):
        per_job = rt["process_client_cmds_per_job"]
        bound = evalsha / per_job
        lines.append(
            f"Bound for our worker: EVALSHA of a trivial script at {evalsha:,.0f}/s over "
            f"{per_job:.2f} client round trips per processed job = {bound:,.0f} jobs/s."
        )
        for key in ("noop_c10", "noop_c100", "noop_2x10"):
            if isinstance(ours.get(key), float):
                lines.append(
                    f"- {key}: {ours[key]:,.0f} jobs/s = {ours[key] / bound:.1%} of that bound"
                )
        simple = rb.get("LPUSH_c50_P16")
        if isinstance(simple, int | float):
            work = per_job + rt["process_script_cmds_per_job"]
            server_bound = simple / work
            lines.append(
                f"Our scripts also run {rt['process_script_cmds_per_job']:.1f} commands inside "
                f"Redis per job, so the tighter bound is the server's work: {simple:,.0f} simple "
                f"commands/s (pipelined LPUSH) over {work:.1f} commands per job = "
                f"{server_bound:,.0f} jobs/s."
            )
            for key in ("noop_c10", "noop_c100", "noop_2x10"):
                if isinstance(ours.get(key), float):
                    lines.append(
                        f"- {key}: {ours[key] / server_bound:.1%} of the server-work bound"
                    )
        lines.append("")
    return lines


def autoscale_section(data: dict[str, Any], plots: list[Path], base: Path) -> list[str]:
    lines = ["## 2. The autoscaler against KEDA + HPA (simulated)", "", *_meta(data)]
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
                label, _num(r["wait_p50"], 1), _num(r["wait_p95"], 1), _num(r["wait_p99"], 1),
                _num(r["replica_seconds"]), str(r["max_replicas"]), str(r["killed_by_scale_down"]),
                _num(r["failed_attempts"]), _num(r["dead_lettered"]), _num(r["completed"]),
            ])  # fmt: skip
        lines += _table(header, rows)
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


def operator_section(data: dict[str, Any]) -> list[str]:
    lines = ["## 3. The operator on the local cluster", "", *_meta(data)]
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
            f"{reaction.get('poll_interval', '?')}): p50 {_num(reaction.get('p50'), 2)} s, p95 "
            f"{_num(reaction.get('p95'), 2)} s, max {_num(reaction.get('max'), 2)} s "
            f"(target p50 < 1 s: {'met' if (reaction.get('p50') or 99) < 1 else 'not met'}).",
            "",
        ]
    scale = data.get("scale", [])
    if scale:
        header = ["JobQueues", "operator CPU (cores)", "RSS MB", "poll lag mean / max s",
                  "polls/s done / due", "Redis commands/s", "window s"]  # fmt: skip
        rows = [
            [
                str(s["jobqueues"]), _num(s.get("cpu_cores"), 3), _num(s.get("rss_mb"), 0),
                f"{_num(s.get('poll_lag_mean'), 3)} / {_num(s.get('poll_lag_max'), 3)}",
                f"{_num(s.get('polls_per_s'), 1)} / {_num(s.get('expected_polls_per_s'), 0)}",
                _num(s.get("redis_commands_per_s"), 0), _num(s.get("window"), 0),
            ]
            for s in scale
        ]  # fmt: skip
        lines += [*_table(header, rows), ""]
        for s in scale:
            if s.get("note"):
                lines.append(f"- {s['jobqueues']} JobQueues: {s['note']}")
        lines.append("")
    return lines


def write(out: Path, base: Path) -> Path:
    """Render RESULTS.md into `base` from the JSON files in `out`; returns its path."""
    lines = [
        "# Benchmark results",
        "",
        "Generated by `python -m bench` (`make bench` = `--quick`, `make bench-full` = `--full`) "
        "from bench/out/*.json; do not edit by hand. Everything runs on one machine in one run, "
        "so compare ratios, not absolute numbers (the machine is shared and noisy).",
        "",
    ]
    queues = _load(out, "queues")
    if queues:
        lines += queues_section(queues)
        if "systems" in queues:
            try:
                from bench import plots as plotting

                plot = plotting.queues(queues, base / "plots")
            except ImportError:
                plot = None
            if plot is not None:
                lines += [f"![processing rates]({plot.relative_to(base).as_posix()})", ""]
    autoscale = _load(out, "autoscale")
    if autoscale:
        plots: list[Path] = []
        if "traces" in autoscale:
            try:
                from bench import plots as plotting

                plots = plotting.autoscale(autoscale, base / "plots")
            except ImportError as exc:
                lines += [f"(plots skipped: {exc}; install the `bench` extra)", ""]
        lines += autoscale_section(autoscale, plots, base)
    operator = _load(out, "operator")
    if operator:
        lines += operator_section(operator)
    path = base / "RESULTS.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path
