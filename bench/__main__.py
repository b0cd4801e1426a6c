"""`python -m bench --quick|--full [--sections queues,memory,autoscale,operator]`.

Each section writes bench/out/<section>.json; bench/RESULTS.md and the plots in bench/plots/
are then rendered from whatever JSON is there, so one section can be re-run on its own.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import machine, report

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
SECTIONS = ("queues", "memory", "autoscale", "operator")


def _run_section(
    name: str, full: bool, counts: list[int] | None, window: float | None
) -> dict[str, Any]:
    if name == "queues":
        from bench.queues import run as queues

        return queues.run(full)
    if name == "memory":  # 100,000 jobs quick, 1,000,000 full (issue 20)
        from bench.queues import memory

        return memory.run(full)
    if name == "autoscale":
        from bench.autoscale import run as autoscale

        return autoscale.run(full)
    from bench.operator import run as operator

    return operator.run(full, counts, window)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small N, a few minutes (default)")
    mode.add_argument("--full", action="store_true", help="20,000 jobs, every scenario")
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help="comma-separated: " + ", ".join(SECTIONS)
    )
    parser.add_argument(
        "--jobqueues",
        default=None,
        help="operator section: JobQueue counts (default 10,100; 10,100,1000 with --full)",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=None,
        help="operator section: seconds measured per JobQueue count (default 30; 60 with "
        "--full; over 300 includes the idle status refresh)",
    )
    args = parser.parse_args(argv)
    try:
        counts = [int(c) for c in args.jobqueues.split(",")] if args.jobqueues else None
    except ValueError:
        parser.error(f"--jobqueues takes comma-separated integers, got {args.jobqueues!r}")
    if args.window is not None and args.window <= 0:
        parser.error(f"--window takes a positive number of seconds, got {args.window}")
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    OUT.mkdir(parents=True, exist_ok=True)
    command = "python -m bench " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    meta = {
        "command": command.strip(),
        "mode": "full" if args.full else "quick",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine.describe(),
    }
    failed = False
    for name in sections:
        started = time.monotonic()
        print(f"== {name}", flush=True)
        try:
            result = _run_section(name, args.full, counts, args.window)
        except Exception as exc:  # a broken section is reported, the others still run
            traceback.print_exc()
            result = {"error": f"{type(exc).__name__}: {exc}"}
            failed = True
        result["meta"] = {**meta, "seconds": round(time.monotonic() - started, 1)}
        (OUT / f"{name}.json").write_text(json.dumps(result, indent=1, default=str))
    path = report.write(OUT, BENCH)
    print(f"wrote {path}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
