"""bench.queues.scriptcost end to end at a tiny size: both sides' figures come out, told
apart by queue even when both sides run the same scripts (a redis-server on loopback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_both_sides_report_commands_and_redis_time_for_every_call() -> None:
    lua = REPO / "worker" / "jobqueue" / "protocol" / "lua"
    run = subprocess.run(
        [sys.executable, "-m", "bench.queues.scriptcost", str(lua), "--jobs", "60",
         "--batch", "5", "--bulk-calls", "2"],
        cwd=REPO, capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    result = json.loads(run.stdout)
    assert result["commands"]["before"] == result["commands"]["after"]  # the same scripts
    for side in ("before", "after"):
        redis_us = result["median_redis_us"][side]
        assert set(redis_us) == {"submit", "complete_and_take_5", "bulk_submit_per_job"}
        assert all(value > 0 for value in redis_us.values()), redis_us
        assert result["calls"][side] == {"submit": 60, "call": 12}
