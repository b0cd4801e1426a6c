"""PNG plots from the JSON results (matplotlib, the `bench` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def autoscale(results: dict[str, Any], directory: Path) -> list[Path]:
    """One figure per trace: backlog (queued + backoff) and replicas over time per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for trace, entry in results["traces"].items():
        fig, (ax_backlog, ax_replicas) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
        for policy, summary in entry["policies"].items():
            s = summary["samples"]
            minutes = [t / 60 for t in s["t"]]
            ax_backlog.plot(minutes, s["queued"], label=policy, linewidth=1)
            ax_replicas.plot(minutes, s["pods"], label=policy, linewidth=1)
        span = entry.get("trouble") or entry.get("outage")
        if span:  # the outage (of a dependency, of Redis, of the operator) the trace is about
            for ax in (ax_backlog, ax_replicas):
                ax.axvspan(span[0] / 60, span[1] / 60, alpha=0.15, color="red")
        ax_backlog.set_ylabel("waiting jobs")
        ax_backlog.set_yscale("symlog")
        ax_replicas.set_ylabel("pods (incl. starting, draining)")
        ax_replicas.set_xlabel("minutes")
        ax_backlog.set_title(f"{trace}: {entry['description']}")
        ax_backlog.legend(loc="upper right", fontsize=8)
        fig.tight_layout()
        path = directory / f"autoscale-{trace}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


def queues(results: dict[str, Any], directory: Path) -> Path | None:
    """Processing rates per system (grouped bars), log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("noop_c10", "no-op c10"), ("noop_c100", "no-op c100"), ("noop_2x10", "no-op 2x10"),
            ("sleep_c10", "10 ms c10"), ("sleep_c100", "10 ms c100")]  # fmt: skip
    systems = {
        name: res
        for name, res in results.get("systems", {}).items()
        if any(isinstance(res.get(key), float) for key, _ in rows)
    }
    if not systems:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(rows)
    for i, (key, label) in enumerate(rows):
        values = [r.get(key) if isinstance(r.get(key), float) else 0.0 for r in systems.values()]
        ax.bar([x + i * width for x in range(len(systems))], values, width, label=label)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(systems))], list(systems))
    ax.set_yscale("log")
    ax.set_ylabel("jobs/s (one process unless 2x)")
    ax.set_title("Processing rate, same redis-server, same run")
    ax.legend(fontsize=8, ncol=len(rows))
    fig.tight_layout()
    path = directory / "queues-processing.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def memory(results: dict[str, Any], directory: Path) -> Path | None:
    """RSS of the worker and the client, and Redis's used_memory, over the jobs of the run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not any("rss_mb" in s for s in results.get("worker", {}).get("samples", [])):
        return None
    directory.mkdir(parents=True, exist_ok=True)
    fig, (ax_rss, ax_redis) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for role, label in (("worker", "worker (x: jobs done)"), ("client", "client (x: submitted)")):
        points = [(s["count"] / 1000, s["rss_mb"]) for s in results[role]["samples"]
                  if "rss_mb" in s]  # fmt: skip
        if points:
            ax_rss.plot(*zip(*points, strict=True), label=label, linewidth=1)
    redis = [(s["count"] / 1000, s["used_memory_mb"]) for s in results["redis"]["samples"]]
    if redis:
        ax_redis.plot(*zip(*redis, strict=True), label="Redis used_memory", linewidth=1, color="C2")
    warm = results["settings"]["warm_fraction"] * results["settings"]["jobs"] / 1000
    for ax in (ax_rss, ax_redis):
        ax.axvline(warm, color="grey", linestyle=":", linewidth=1)
        ax.set_ylim(bottom=0)
        ax.legend(loc="lower right", fontsize=8)
    ax_rss.set_ylabel("RSS (MB)")
    ax_redis.set_ylabel("MB")
    ax_redis.set_xlabel("thousands of jobs (dotted: end of warm-up)")
    ax_rss.set_title(f"Memory over {results['settings']['jobs']:,} jobs, concurrency "
                     f"{results['settings']['concurrency']}")  # fmt: skip
    fig.tight_layout()
    path = directory / "memory.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
