"""RESULTS.md section 1: queue throughput and latency, ours against the other queues."""

from __future__ import annotations

from typing import Any

from bench.render import meta, num, table

OURS = "jobqueue"


def section(data: dict[str, Any]) -> list[str]:
    lines = ["## 1. Queue throughput and latency", "", *meta(data)]
    if "error" in data:
        return [*lines, f"Section failed: {data['error']}", ""]
    settings = data["settings"]
    warmup = settings.get("warmup", 0)
    warm_text = (
        f"Every worker first runs {warmup:,} warm-up no-op jobs (enqueued ahead of the measured "
        f"ones, not counted) and every client sends {warmup:,} untimed before its timed ones, so "
        "Node's JIT is warm when measuring starts (cold runs flattered us against BullMQ on "
        "Node); the latency worker also runs the warm-up first."
        if warmup
        else "No warm-up: a JIT-compiled runtime (BullMQ on Node) is measured partly cold."
    )
    quick = data.get("meta", {}).get("mode") == "quick"
    small = (
        " Quick mode: small N, and BullMQ on Node can still be partly cold after 2,000 warm-up "
        "jobs (its no-op rate in quick runs was about half its full-run rate), so no ratios "
        "or target verdicts are printed: they come from full runs only, and quick mode "
        "flatters nobody."
        if quick
        else ""
    )
    lines += [
        f"{settings['jobs']:,} no-op jobs per throughput row, {settings['sleep_jobs']:,} jobs per "
        f"10 ms sleep row, {settings['latency_samples']} latency samples (a job every 5 ms to an "
        "idle worker at concurrency 10), one redis-server (no persistence) shared by all, "
        "FLUSHALL between rows. Processing rate = jobs done / (last job end - first job start), "
        "jobs enqueued before the workers start; a row stops counting "
        f"{settings.get('measure_seconds', '?')} s after its first job started (slow systems). "
        f"{warm_text}{small} Each Python system runs from its own virtualenv "
        "(bench/out/venvs/<system>, its newest release on PyPI; ours from the project's), "
        f"BullMQ on Node from bench/node. Versions: {_versions(data.get('versions', {}))}.",
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
            f"{lat['p50_ms']:.2f} / {lat['p99_ms']:.2f}" if isinstance(lat, dict) else num(lat)
        )
        rows.append([name, *[num(res.get(key)) for key, _ in scenarios], lat_text])
    lines += table(header, rows)
    loads = [v for res in systems.values() for v in res.get("load", {}).values()]
    if loads:
        lines += [
            "",
            f"1-minute load average after each row: {min(loads):.2f} to {max(loads):.2f} "
            "(2 cores, shared with other work).",
        ]
    lines += ["", "Settings per system:", ""]
    lines += [f"- **{name}**: {res.get('notes', '')}" for name, res in systems.items()]
    if quick:
        lines += ["", "Ratios and target verdicts: full runs only (`make bench-full`).", ""]
    else:
        lines += ["", *_ratios(systems, scenarios), ""]
    lines += _round_trips(systems)
    lines += _bound(data, systems)
    return lines


def _versions(versions: dict[str, Any]) -> str:
    """Per system ("arq: arq 0.28.0, redis 5.3.1"), or flat as older runs recorded them."""
    parts = []
    for name, value in versions.items():
        if isinstance(value, dict):
            libs = ", ".join(f"{k} {v}" for k, v in value.items())
            parts.append(f"{name}: {libs}")
        else:
            parts.append(f"{name} {value}")
    return "; ".join(parts) or "not recorded"


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
        out.append(f"- {label}: {mine / others[best]:.2f}x {best} ({num(others[best])})")
    lat = ours.get("latency")
    if isinstance(lat, dict):
        out.append(
            f"- enqueue-to-start p50 {lat['p50_ms']:.2f} ms (target <= 0.5 ms, issue 20: "
            f"{'met' if lat['p50_ms'] <= 0.5 else 'not met'})"
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
        *table(header, rows),
        "",
    ]


def _bound(data: dict[str, Any], systems: dict[str, Any]) -> list[str]:
    rb = data.get("redis_benchmark", {})
    if not rb:
        return []
    rows = [[k, num(v)] for k, v in rb.items() if isinstance(v, int | float)]
    lines = [
        "redis-benchmark on the same server (requests/s; c50 = 50 connections, c1 = one, P16 = "
        "16-deep pipelining):",
        "",
        *table(["test", "requests/s"], rows),
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
