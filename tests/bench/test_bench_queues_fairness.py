"""The queue benchmark's fairness mechanics (pure: no benchmark run, no Redis)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

# bench/ sits at the repository root and is not installed (see test_bench_report.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import report
from bench.queues import probe, run


@pytest.fixture
def fresh_probe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BENCH_REPORT_DIR", str(tmp_path))
    state = {"count": 0, "warm": 0, "first_start": None, "last_end": None, "latencies": []}
    monkeypatch.setattr(probe, "_state", state)
    monkeypatch.setattr(probe, "_writer_pid", 1)  # no writer thread outliving the test


@pytest.mark.usefixtures("fresh_probe")
def test_warm_up_jobs_are_counted_apart_and_never_start_the_clock() -> None:
    for _ in range(3):
        probe.handle_sync({"k": "warm"})
    assert probe._state["warm"] == 3
    assert probe._state["count"] == 0
    assert probe._state["first_start"] is None
    probe.handle_sync({"k": "noop"})
    assert probe._state["count"] == 1
    assert probe._state["first_start"] is not None


def test_every_python_peer_has_its_own_requirements_and_both_modes_warm_up() -> None:
    requirements = Path(run.__file__).resolve().parents[1] / "requirements"
    for entry in run.ENTRIES:
        if entry.requirements is not None:
            assert (requirements / f"{entry.requirements}.txt").is_file(), entry.name
    assert run.QUICK.warmup > 0 and run.FULL.warmup >= 5000
    assert run.FULL.jobs >= 20000


def test_report_names_each_systems_versions_and_the_warm_up(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    queues = {
        "settings": {"jobs": 100, "sleep_jobs": 50, "latency_samples": 10,
                     "measure_seconds": 5, "warmup": 40},
        "scenarios": [["noop_c10", "no-op c10"]],
        "versions": {"arq": {"arq": "0.28.0", "redis": "5.3.1"},
                     "bullmq-node": {"bullmq": "6.7.0"}},
        "systems": {
            "jobqueue": {"notes": "ours", "noop_c10": 3000.0, "load": {"noop_c10": 1.5}},
            "arq": {"notes": "theirs", "noop_c10": 1000.0, "load": {"noop_c10": 2.5}},
        },
        "meta": {"mode": "quick"},
    }  # fmt: skip
    (out / "queues.json").write_text(json.dumps(queues))
    text = report.write(out, tmp_path).read_text()
    assert "arq: arq 0.28.0, redis 5.3.1; bullmq-node: bullmq 6.7.0" in text
    assert "first runs 40 warm-up no-op jobs" in text
    assert "flatters nobody" in text
    assert "Ratios and target verdicts: full runs only" in text
    assert "3.00x arq" not in text  # no ratio from a quick run
    assert "load average after each row: 1.50 to 2.50" in text
