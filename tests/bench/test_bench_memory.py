"""The memory benchmark (bench/queues/memory.py, issue 20) in short: its arithmetic on made-up
samples, its rendering, and the whole run at 2,000 jobs against a real redis-server, a real
`jobq worker` and a real client process, so the code `make bench` runs at 100,000 jobs and
`make bench-full` at 1,000,000 cannot rot. Nothing here asserts a memory figure: the
figures are the benchmark's to report.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import report
from bench.queues import memory, memory_report, memory_summary


def _samples(total: int, rss: Any) -> list[dict[str, Any]]:
    return [{"count": c, "rss_mb": rss(c)} for c in range(0, total + 1, total // 50)]


def test_a_leak_of_a_fixed_size_per_job_is_not_flat_and_its_slope_is_measured() -> None:
    # 100 bytes per job after a warm-up that doubled the RSS
    leaking = _samples(100_000, lambda c: 60.0 + 1e-4 * c if c >= 10_000 else 30.0)
    summary = memory_summary.summarize(leaking, 100_000)
    rss = summary["rss_mb"]
    assert rss["warm"] == pytest.approx(61.0)
    assert rss["slope_per_100k"] == pytest.approx(10.0)
    assert rss["fitted_growth"] == pytest.approx(9.0)
    assert summary["verdict"]["flat"] is False


def test_warm_up_growth_and_allocator_steps_do_not_count_against_flat() -> None:
    # a big rise during the first 10 %, then a 1 MB arena step halfway and back down
    stepped = _samples(100_000, lambda c: 30.0 + c / 1000 if c < 10_000 else 41.0 + (c == 50_000))
    summary = memory_summary.summarize(stepped, 100_000)
    assert summary["rss_mb"]["max"] == pytest.approx(42.0)
    assert summary["rss_mb"]["growth"] == pytest.approx(0.0)
    assert summary["verdict"]["flat"] is True


def test_slope_needs_two_distinct_counts() -> None:
    assert memory_summary.slope([(1.0, 2.0)]) is None
    assert memory_summary.slope([(1.0, 2.0), (1.0, 3.0)]) is None
    assert memory_summary.slope([(0.0, 1.0), (2.0, 5.0)]) == pytest.approx(2.0)


def _memory_json(flat: bool) -> dict[str, Any]:
    worker = memory_summary.summarize(
        _samples(1000, lambda c: 50.0 + (0 if flat else c / 100)), 1000
    )
    return {
        "settings": {"jobs": 1000, "concurrency": 100, "batch": 500, "singles": 50,
                     "backlog": 5000, "result_ttl": 60.0, "interval": 2.0,
                     "warm_fraction": 0.1, "flat_mb": 5.0, "flat_relative": 0.03},
        "seconds": 1.0, "rate": 1000.0, "load": {"min_1m": 1.0, "max_1m": 2.0},
        "worker": {"summary": worker, "samples": []},
        "client": {"summary": worker, "samples": []},
        "redis": {"summary": {}, "samples": []},
    }  # fmt: skip


def test_the_memory_subsection_stays_when_only_the_queues_section_is_re_run(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "memory.json").write_text(json.dumps(_memory_json(flat=False)))
    text = report.write(out, tmp_path).read_text()
    assert "## 1. Queue throughput and latency" in text  # a heading for it to live under
    assert f"{memory_report.HEADING}: one worker at concurrency 100" in text
    assert "| worker (`jobq worker`, concurrency 100) | 51.0 (at 100) |" in text
    assert "NOT flat" in text
    (out / "memory.json").unlink()
    queues = {"settings": {"jobs": 10, "sleep_jobs": 5, "latency_samples": 1},
              "scenarios": [], "systems": {}}  # fmt: skip
    (out / "queues.json").write_text(json.dumps(queues))
    text = report.write(out, tmp_path).read_text()
    assert text.count("## 1. Queue throughput and latency") == 1
    assert "NOT flat" in text
    assert text.index("## 1.") < text.index(memory_report.HEADING)


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_small_run_samples_both_processes_and_redis_and_reports_a_verdict() -> None:
    result = memory.run_memory(2000, 0.1)
    assert result["settings"]["jobs"] == 2000
    assert result["settings"]["concurrency"] == 100
    assert result["rate"] > 0
    for role in ("worker", "client"):
        summary = result[role]["summary"]
        assert summary["rss_mb"]["samples"] >= 1
        assert summary["rss_mb"]["end"] > 10  # a Python process with redis-py loaded
        assert summary["allocated_blocks"]["samples"] >= 1
        assert summary["verdict"]["flat"] in (True, False)
        assert all(s["count"] <= 2000 for s in result[role]["samples"])
    assert result["worker"]["summary"]["rss_mb"]["end_at"] == 2000
    redis = result["redis"]["summary"]
    assert redis["used_memory_mb"]["end"] > 0
    assert redis["keys"]["end"] > 0
    assert redis["completed_kept"]["max"] <= 2000
    assert redis["journals"]["samples"] >= 1
    lines = memory_report.section(result)
    assert any(line.startswith("| worker (`jobq worker`, concurrency 100) |") for line in lines)
    assert any(line.startswith("| client (`AsyncQueue`") for line in lines)
