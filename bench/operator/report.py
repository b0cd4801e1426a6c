"""RESULTS.md section 3: the operator on the local cluster."""

from __future__ import annotations

from typing import Any

from bench.render import meta, num, table


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
                  "poll lag mean / max s", "polls/s done / due", "Redis commands/s",
                  "Redis commands per poll", "settled after s", "window s"]  # fmt: skip
        rows = [
            [
                str(s["jobqueues"]), num(s.get("cpu_cores"), 3),
                " / ".join(num(s.get(k), 0) for k in
                           ("rss_before_mb", "rss_start_mb", "rss_end_mb", "rss_mb")),
                f"{num(s.get('poll_lag_mean'), 3)} / {num(s.get('poll_lag_max'), 3)}",
                f"{num(s.get('polls_per_s'), 1)} / {num(s.get('expected_polls_per_s'), 0)}",
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
        lines.append("")
    return lines


def _settled(s: dict[str, Any]) -> str:
    """Seconds until the poll rate settled (older runs did not wait: '-')."""
    if "settle_s" not in s:
        return "-"
    return num(s["settle_s"], 0) + ("" if s.get("settled") else " (not settled)")
