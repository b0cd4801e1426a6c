"""Before/after of a change to our code, in one run: `python -m bench.queues.ab BEFORE_WORKER_DIR`.

BEFORE_WORKER_DIR holds the `jobqueue` package as it was (e.g. `git archive <commit> worker |
tar -x -C /tmp/before`, then /tmp/before/worker); "after" is this checkout. The two alternate,
`--reps` times, on one redis-server, through the benchmark's own harness at full size (20,000
jobs after a 5,000-job warm-up); each figure keeps the load average it was taken at.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from bench.queues import harness, run
from bench.redisserver import redis_server


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.queues.ab")
    parser.add_argument("before", type=Path, help="directory holding the old jobqueue package")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rows", default="enqueue_single,noop_c10")
    args = parser.parse_args()
    if not (args.before / "jobqueue" / "__init__.py").is_file():
        parser.error(f"{args.before} holds no jobqueue package")
    rows = set(args.rows.split(","))
    systems = {}
    for label, path in (("before", f"{args.before}{os.pathsep}"), ("after", "")):
        system = harness.python_system(
            f"jobqueue-{label}", Path(sys.executable), label, module="jobqueue", has_bulk=True
        )
        system.env["PYTHONPATH"] = path + system.env["PYTHONPATH"]
        systems[label] = system
    print(json.dumps(alternate(systems, args.reps, rows), indent=1))


def _figure(value: Any) -> float | None:
    """A row's number: a rate, or a latency row's p50; None for an error."""
    if isinstance(value, dict):
        return float(value["p50_ms"]) if "p50_ms" in value else None
    return float(value) if isinstance(value, (int, float)) else None


def alternate(systems: dict[str, harness.System], reps: int, rows: set[str]) -> dict[str, Any]:
    """The rows of each system in turn, ``reps`` times, on one redis-server at full size:
    every figure (with the load average it was taken at) and the medians."""
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in systems}
    with redis_server() as url:
        for _ in range(reps):
            for label, system in systems.items():
                runs[label].append(harness.run_system(system, url, run.FULL, rows))
    medians = {
        label: {
            row: statistics.median(v for r in results if (v := _figure(r.get(row))) is not None)
            for row in sorted(rows)
        }
        for label, results in runs.items()
    }
    return {"runs": runs, "median": medians}


if __name__ == "__main__":
    main()
