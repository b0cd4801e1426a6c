"""`python -m bench.chaos --quick|--full [--runs worker,netcut] [--jobs N]`.

Writes bench/out/chaos.json, then re-renders bench/RESULTS.md (its "Reliability" section;
the other sections keep what they said).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import shlex
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import machine, report
from bench.__main__ import BENCH, OUT

RUNS = ("worker", "netcut", "operator", "scaledown", "peers")


def _run(name: str, full: bool, jobs: int | None, workdir: Path | None) -> dict[str, Any]:
    if name == "worker":
        from bench.chaos import worker_run

        plan = worker_run.FULL if full else worker_run.QUICK
        if jobs is not None:
            plan = dataclasses.replace(plan, jobs=jobs)
        return asyncio.run(worker_run.run(plan, workdir / name if workdir else None))
    if name == "peers":
        from bench.chaos import peers

        return peers.run(peers.FULL if full else peers.QUICK, workdir / name if workdir else None)
    if name == "scaledown":
        from bench.chaos import scaledown_run

        return scaledown_run.run(
            scaledown_run.FULL if full else scaledown_run.QUICK, workdir / name if workdir else None
        )
    if name == "operator":
        from bench.chaos import operator_run

        return operator_run.run(
            operator_run.FULL if full else operator_run.QUICK, workdir / name if workdir else None
        )
    from bench.chaos import netcut

    return asyncio.run(
        netcut.run(netcut.FULL if full else netcut.QUICK, workdir / name if workdir else None)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a few thousand jobs (default)")
    mode.add_argument("--full", action="store_true", help="100,000 jobs")
    parser.add_argument(
        "--runs", default=",".join(RUNS), help="comma-separated: " + ", ".join(RUNS)
    )
    parser.add_argument("--jobs", type=int, default=None, help="jobs of the worker run")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep logs and tallies here (default: a temp dir)",
    )
    args = parser.parse_args(argv)
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    unknown = sorted(set(runs) - set(RUNS))
    if unknown:
        parser.error(f"unknown run(s) {', '.join(unknown)}; choose from {', '.join(RUNS)}")
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs takes a positive number, got {args.jobs}")
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "chaos.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    command = "python -m bench.chaos " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    failed = False
    for name in runs:
        started = time.monotonic()
        print(f"== chaos: {name}", flush=True)
        meta = {
            "command": command.strip(),
            "mode": "full" if args.full else "quick",
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine.describe(),
        }
        try:
            result = _run(name, args.full, args.jobs, args.workdir)
        except Exception as exc:  # a broken run is reported, the others still run
            traceback.print_exc()
            result = {"error": f"{type(exc).__name__}: {exc}"}
            failed = True
        result["meta"] = {**meta, "seconds": round(time.monotonic() - started, 1)}
        results[name] = result
        path.write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {report.write(OUT, BENCH)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
