"""`python -m bench.operator --counts 1000,5000 --window 60 [--label after] [--profile DIR]`:
the operator section's scale rows alone (no reaction rows), each row growing from the one
before. Appends the run, under its label, to bench/out/operator_scale.json (a run with the
same label is replaced) and re-renders RESULTS.md, whose section 3 shows these runs side by
side (before/after a change, say)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import machine, report
from bench.operator import run

BENCH = Path(__file__).resolve().parents[1]
OUT = BENCH / "out"
SCALE_RUNS = OUT / "operator_scale.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.operator", description=__doc__)
    parser.add_argument("--counts", default="1000", help="comma-separated JobQueue counts")
    parser.add_argument("--window", type=float, default=60.0, help="seconds measured per row")
    parser.add_argument("--label", default="", help="names the run in RESULTS.md")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy output folder")
    parser.add_argument(
        "--operator-src",
        type=Path,
        default=None,
        help="a folder with another jobqueue_operator package to run (e.g. `git archive "
        "<commit> operator`'s operator/), against the same cluster and images",
    )
    parser.add_argument(
        "--operator-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of the operator's environment (repeatable), e.g. IDLE_POLL_SECONDS=0",
    )
    parser.add_argument(
        "--tracemalloc",
        type=Path,
        default=None,
        metavar="DIR",
        help="trace the operator's Python allocations (slows it: CPU figures are off) and "
        "write where its memory is at the end of each row's window to DIR/memory-<count>.txt",
    )
    args = parser.parse_args(argv)
    operator_env = dict(e.split("=", 1) for e in args.operator_env if "=" in e)
    if len(operator_env) != len(args.operator_env):
        parser.error("--operator-env takes NAME=VALUE")
    try:
        counts = [int(c) for c in args.counts.split(",") if c.strip()]
    except ValueError:
        parser.error(f"--counts takes comma-separated integers, got {args.counts!r}")
    if not counts or args.window <= 0:
        parser.error("--counts needs at least one count and --window a positive number")
    label = args.label or datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    started = time.monotonic()
    given = " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    meta = {
        "command": f"python -m bench.operator {given}",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine.describe(),
    }
    result = run.run(
        True,
        counts,
        args.window,
        scale_only=True,
        profile_dir=args.profile,
        operator_source=args.operator_src,
        operator_env=operator_env,
        memory_dir=args.tracemalloc,
    )
    result["meta"] = {**meta, "seconds": round(time.monotonic() - started, 1)}
    result["label"] = label
    OUT.mkdir(parents=True, exist_ok=True)
    runs = json.loads(SCALE_RUNS.read_text()) if SCALE_RUNS.exists() else []
    runs = [r for r in runs if r.get("label") != label] + [result]
    SCALE_RUNS.write_text(json.dumps(runs, indent=1, default=str))
    print(json.dumps(result.get("scale"), indent=1, default=str))
    print(f"wrote {report.write(OUT, BENCH)}", flush=True)
    return 1 if "error" in result or "skipped" in result else 0


if __name__ == "__main__":
    sys.exit(main())
