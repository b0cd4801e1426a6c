"""Ours against BullMQ on Node, alternating, in one run: `python -m bench.queues.vsnode`.

    python -m bench.queues.vsnode [--reps 3] [--rows enqueue_single,noop_c10,latency]

The rows the issue's targets name, through the benchmark's own harness at full size (20,000
jobs after a 5,000-job warm-up), ours and BullMQ on Node taking turns `--reps` times on one
redis-server, so both see the same minutes of a shared machine (the full run's rows are
minutes apart). Prints every figure with the load average it was taken at, and the medians.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.queues import harness, run
from bench.queues.ab import alternate
from bench.venv import ensure_node


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.queues.vsnode")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rows", default="enqueue_single,noop_c10,latency")
    args = parser.parse_args()
    rows = set(args.rows.split(","))
    unknown = rows - {key for key, _ in harness.SCENARIOS}
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}")
    problem = ensure_node()
    if problem:
        sys.exit(f"BullMQ on Node cannot run here: {problem}")
    systems = {
        "jobqueue": harness.python_system(
            "jobqueue", Path(sys.executable), run.NOTES["jobqueue"], module="jobqueue",
            has_bulk=True,
        ),
        "bullmq-node": harness.node_system(run.NODE_NOTES),
    }  # fmt: skip
    print(json.dumps(alternate(systems, args.reps, rows), indent=1))


if __name__ == "__main__":
    main()
