"""RESULTS.md, end of section 1: memory of a worker and a client over a long run (issue 20)."""

from __future__ import annotations

from typing import Any

from bench.render import meta, num, table

HEADING = "### Memory"


def _mb(value: Any, digits: int = 1) -> str:
    return num(value, digits) if isinstance(value, int | float) else "-"


def _signed(value: Any, digits: int = 2) -> str:
    return f"{value:+,.{digits}f}" if isinstance(value, int | float) else "-"


def _per_job(settings: dict[str, Any]) -> str:
    jobs, flat_mb = settings.get("jobs"), settings.get("flat_mb")
    if not jobs or not isinstance(flat_mb, int | float):
        return "?"
    return f"{flat_mb * 1e6 / ((1 - settings.get('warm_fraction', 0.1)) * jobs):,.0f}"


def _row(label: str, summary: dict[str, Any]) -> list[str]:
    rss = summary.get("rss_mb", {})
    blocks = summary.get("allocated_blocks", {})
    verdict = summary.get("verdict", {})
    flat = verdict.get("flat")
    verdict_text = {True: "flat", False: "NOT flat", None: "-"}[flat]
    blocks_text = (
        f"{num(blocks['warm'])} / {num(blocks['end'])} ({_signed(blocks['growth'], 0)})"
        if blocks.get("samples")
        else "-"
    )
    return [
        label,
        f"{_mb(rss.get('warm'))} (at {num(rss.get('warm_at'))})",
        _mb(rss.get("end")),
        _mb(rss.get("max")),
        _signed(rss.get("growth")),
        _signed(rss.get("slope_per_100k"), 3),
        blocks_text,
        f"{verdict_text}: {verdict.get('why', '')}",
    ]


def section(data: dict[str, Any], plot: str | None = None) -> list[str]:
    """The memory subsection; `plot`: the plot's path relative to RESULTS.md, if drawn."""
    settings = data.get("settings", {})
    jobs = settings.get("jobs")
    lines = [f"{HEADING}: one worker at concurrency 100 and one client, {num(jobs)} jobs", ""]
    lines += meta(data)
    if "error" in data:
        return [*lines, f"Run failed: {data['error']}", ""]
    warm = settings.get("warm_fraction", 0.1)
    after = (1 - warm) * jobs if isinstance(jobs, int) else None
    lines += [
        f"`python -m bench.queues.memory`: a redis-server on loopback, one `jobq worker` "
        f"(concurrency {settings.get('concurrency')}, the benchmark's no-op handler, uvloop) and "
        "one client process submitting without pause: each round one `submit_many` of "
        f"{settings.get('batch')} jobs and {settings.get('singles')} `submit` calls one by "
        f"one, holding back while more than {num(settings.get('backlog'))} jobs wait. The "
        f"client sets the queue's `result_ttl` to {num(settings.get('result_ttl'))} s and "
        "keeps the default retention (10,000 completed jobs). Every "
        f"{settings.get('interval')} s: each process's VmRSS (/proc/<pid>/status), its "
        "`sys.getallocatedblocks()` (Python objects alive), the jobs it has done or "
        "submitted, Redis's used_memory and key count. Warm-up = the first "
        f"{warm:.0%} of the jobs; growth = last sample - first sample after warm-up; slope = "
        "least squares over the samples after warm-up. Flat = neither the growth nor the "
        f"slope times the post-warm-up jobs reaches {num(settings.get('flat_mb'))} MB "
        f"(or {settings.get('flat_relative', 0.03):.0%} of the warm-up RSS, if larger): "
        f"{_per_job(settings)} bytes per job over the {num(after)} jobs after warm-up, so a "
        "per-job structure never pruned (a dict entry alone is ~100 bytes) would show; the "
        "allocator's arena steps (a few MB with the peaks of in-flight work) stay below.",
        "",
    ]
    header = ["process", "RSS at warm-up, MB (after jobs)", "at the end, MB", "max, MB",
              "growth after warm-up, MB", "slope, MB per 100k jobs",
              "allocated blocks warm-up / end", "verdict"]  # fmt: skip
    worker = f"worker (`jobq worker`, concurrency {settings.get('concurrency')})"
    rows = [
        _row(worker, data["worker"]["summary"]),
        _row("client (`AsyncQueue`, x = jobs submitted)", data["client"]["summary"]),
    ]
    lines += table(header, rows)
    redis = data.get("redis", {}).get("summary", {})
    used, keys = redis.get("used_memory_mb", {}), redis.get("keys", {})
    kept, journals = redis.get("completed_kept", {}), redis.get("journals", {})
    load = data.get("load", {})
    lines += [
        "",
        f"Redis used_memory: {_mb(used.get('warm'))} MB at warm-up, {_mb(used.get('end'))} MB "
        f"at the end, at most {_mb(used.get('max'))} MB; keys {num(keys.get('warm'))} / "
        f"{num(keys.get('end'))} / at most {num(keys.get('max'))} (warm-up / end / max)"
        + (
            f", of which completed job records kept {num(kept.get('end'))} at the end (at "
            f"most {num(kept.get('max'))}: the retention's 10,000, past it the finishing "
            f"script deletes the oldest) and take journals {num(journals.get('warm'))} / "
            f"{num(journals.get('end'))} / at most {num(journals.get('max'))} (one per take "
            "call, kept for the lease, 30 s, so a lost reply can be recovered: their number "
            "follows the rate of take calls, not the jobs done); the rest: the waiting "
            "backlog and the queue's fixed keys."
            if kept.get("samples")
            else "."
        ),
        f"{num(jobs)} jobs in {num(data.get('seconds'), 1)} s ({num(data.get('rate'))} jobs/s: "
        "a memory run, not a rate figure); 1-minute load average "
        f"{_mb(load.get('min_1m'), 2)} to {_mb(load.get('max_1m'), 2)} during the run "
        "(2 cores, shared with other work).",
        "",
    ]
    if plot:
        lines += [f"![memory over a long run]({plot})", ""]
    return lines
