"""Stored figures of `ours` from an earlier decide(), so the report can say "than before".

The simulator imports jobqueue_operator.scaling as it is and never keeps a copy of it, so an
earlier decide() can only be measured by running this simulator against that commit's
operator package, then storing the figures:

    git archive <commit> operator worker | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before/operator:/tmp/before/worker \\
        python -m bench.autoscale.baseline --full --label "<commit> (before issue 12)"

writes bench/autoscale/baseline-full.json (--quick: baseline-quick.json). The figures are valid
for the simulator and traces of the commit that measured them; re-measure when they change.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.autoscale import policies, run, workload
from bench.autoscale.sim import simulate

HERE = Path(__file__).resolve().parent
KEPT = (
    "wait_p95",
    "replica_seconds",
    "scale_events_per_hour",
    "max_replicas",
    "failed_attempts",
    "dead_lettered",
    "completed",
    "done_p95",
    "pods_at_trouble",
    "ready_at_trouble",
    "peak_pods_in_trouble",
    "peak_ready_in_trouble",
)


def path_for(mode: str) -> Path:
    return HERE / f"baseline-{mode}.json"


def load(mode: str) -> dict[str, Any] | None:
    """The stored figures for a mode (quick or full), if any."""
    path = path_for(mode)
    if not path.exists():
        return None
    stored: dict[str, Any] = json.loads(path.read_text())
    return stored


def measure(full: bool, label: str) -> dict[str, Any]:
    out: dict[str, Any] = {"label": label, "seed": run.SEED, "traces": {}}
    for trace in workload.standard_traces(full):
        w = workload.build(trace, run.SEED)
        cluster = run.cluster_for(trace)
        ours = policies.Ours(cluster.concurrency, run.MAX_REPLICAS, name="ours", **trace.ours)
        summary = simulate(w, ours, cluster).summary()
        figures = {key: summary.get(key) for key in KEPT}
        figures["gate_changes"] = ours.gate_changes
        out["traces"][trace.name] = figures
        print(f"{trace.name}: {figures}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.autoscale.baseline")
    parser.add_argument("--full", action="store_true", help="the traces of --full runs")
    parser.add_argument("--label", required=True, help="what was measured, e.g. a commit")
    args = parser.parse_args()
    mode = "full" if args.full else "quick"
    path_for(mode).write_text(json.dumps(measure(args.full, args.label), indent=1) + "\n")


if __name__ == "__main__":
    main()
