"""Pure arithmetic of the memory benchmark: warm-up, end, max, slope and the flat verdict.

A sample is a dict with ``count`` (jobs done or submitted by then) and the measured series
(``rss_mb``, ``allocated_blocks``, ...). Samples before ``warm_fraction`` of the run are the
warm-up: caches, pools, the allocator's arenas and the event loop's structures fill there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

WARM_FRACTION = 0.1
# Flat: the RSS a least-squares line gains over the post-warm-up jobs, and the last sample
# over the warm-up one, both stay under this bound. 5 MB over 900,000 jobs is under 6 bytes
# per job, less than the smallest Python object (an int is 28 bytes, a dict entry's share of
# its table ~30), so any per-job structure that is never pruned shows above it; in the quick
# run (90,000 jobs after warm-up) it still catches 56 bytes per job. Below it are the
# allocator's steps: pymalloc takes 256 KiB arenas and glibc malloc keeps freed memory, so
# RSS moves by a few MB with the peaks of in-flight work (a burst of 500 submitted jobs, 100
# running), not with the number of jobs done.
FLAT_MB = 5.0
FLAT_RELATIVE = 0.03


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x; None for fewer than two distinct x."""
    if len(points) < 2:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / sxx


def series(samples: Sequence[dict[str, Any]], key: str, total: int) -> dict[str, Any]:
    """Warm-up, end, max and growth of one series over the jobs counted in ``count``;
    ``slope_per_100k``: its least-squares slope over the post-warm-up samples, per 100,000
    jobs; ``fitted_growth``: that slope over the post-warm-up jobs."""
    points = [(s["count"], s[key]) for s in samples if s.get(key) is not None]
    if not points:
        return {"samples": 0}
    warm_at = WARM_FRACTION * total
    after = [p for p in points if p[0] >= warm_at] or points[-1:]
    per_job = slope(after)
    span = after[-1][0] - after[0][0]
    warm_value, end_value = after[0][1], after[-1][1]
    return {
        "samples": len(after),
        "warm": warm_value,
        "warm_at": after[0][0],
        "end": end_value,
        "end_at": after[-1][0],
        "max": max(v for _, v in points),
        "max_after_warm": max(v for _, v in after),
        "growth": end_value - warm_value,
        "slope_per_100k": None if per_job is None else per_job * 100_000,
        "fitted_growth": None if per_job is None else per_job * span,
    }


def verdict(rss: dict[str, Any]) -> dict[str, Any]:
    """Flat when neither the fitted growth nor the last-over-warm-up growth of the RSS (MB)
    exceeds FLAT_MB or FLAT_RELATIVE of the warm-up RSS, whichever is larger."""
    if not rss.get("samples"):
        return {"flat": None, "bound_mb": None, "why": "no samples"}
    bound = max(FLAT_MB, FLAT_RELATIVE * rss["warm"])
    fitted = rss["fitted_growth"] if rss["fitted_growth"] is not None else rss["growth"]
    worst = max(fitted, rss["growth"])
    flat = worst < bound
    return {
        "flat": flat,
        "bound_mb": round(bound, 2),
        "why": f"growth or fitted growth {worst:+.2f} MB {'<' if flat else '>='} {bound:.2f} MB",
    }


def summarize(samples: Sequence[dict[str, Any]], total: int) -> dict[str, Any]:
    """Per series of one process's samples: rss_mb (with the verdict) and allocated_blocks
    (when the process reported them)."""
    out: dict[str, Any] = {}
    for key in ("rss_mb", "allocated_blocks"):
        if any(s.get(key) is not None for s in samples):
            out[key] = series(samples, key, total)
    out["verdict"] = verdict(out.get("rss_mb", {}))
    return out
