"""bench.queues.latency_parts: how stamps become the parts of a job's wait (pure, no run)."""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ sits at the repository root and is not installed (see test_bench_report.py)
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.queues.latency_parts import _parts


def test_each_job_splits_into_its_parts_and_follow_up_takes_are_left_out() -> None:
    client = [
        {"t": 10.0, "sent": 10.0002, "returned": 10.0015},
        {"t": 20.0, "sent": 20.0003, "returned": 20.0020},
    ]
    stamps = [
        ["read", 10.0006],  # BZPOPMIN's reply
        ["read", 10.0007],  # the pipelined take's reply
        ["decoded", 10.0008, 1],
        ["start", 10.0010, 10.0],
        ["read", 10.0030],  # an empty follow-up take: not a job's path
        ["decoded", 10.0031, 0],
        ["read", 19.0],  # a take that ran before the job was sent: left out
        ["read", 19.1],
        ["decoded", 19.2, 1],
        ["start", 20.0040, 20.0],
    ]
    result = _parts(client, stamps)
    assert result["samples"] == 1
    parts = {key.split(" (")[0]: value["p50_us"] for key, value in result["parts"].items()}
    assert parts == {
        "stamp -> bytes sent": 200,
        "bytes sent -> BZPOPMIN reply read": 400,
        "BZPOPMIN reply -> take reply read": 100,
        "take reply -> jobs decoded": 100,
        "jobs decoded -> handler starts": 200,
        "enqueue-to-start": 1000,
        "client's submit returns": 1500,
    }
