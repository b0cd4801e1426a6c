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
        if entry.get("outage"):
            for ax in (ax_backlog, ax_replicas):
                ax.axvspan(
                    entry["outage"][0] / 60, entry["outage"][1] / 60, alpha=0.15, color="red"
                )
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
