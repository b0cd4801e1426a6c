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
    runs: dict[str, list[dict[str, object]]] = {"before": [], "after": []}
    with redis_server() as url:
        for _ in range(args.reps):
            for label, system in systems.items():
                runs[label].append(harness.run_system(system, url, run.FULL, rows))
    summary = {
        label: {
            row: statistics.median(float(r[row]) for r in results if isinstance(r[row], float))
            for row in sorted(rows)
        }
        for label, results in runs.items()
    }
    print(json.dumps({"runs": runs, "median": summary}, indent=1))


if __name__ == "__main__":
    main()
