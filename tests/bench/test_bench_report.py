"""RESULTS.md rendering from section JSON (pure: synthetic figures, no benchmark run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

# bench/ sits at the repository root and is not installed; `python -m pytest` from the root
# finds it, a bare `pytest` needs the root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import report


def test_report_tables_ratios_and_failed_systems(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    queues = {
        "settings": {"jobs": 100, "sleep_jobs": 50, "latency_samples": 10, "measure_seconds": 5},
        "scenarios": [["noop_c10", "no-op c10"], ["latency", "latency"]],
        "versions": {"arq": "0.28.0"},
        "systems": {
            "jobqueue": {"notes": "ours", "noop_c10": 3000.0,
                         "latency": {"p50_ms": 0.8, "p99_ms": 2.0, "samples": 10}},
            "arq": {"notes": "theirs", "noop_c10": 1000.0, "latency": "failed: boom"},
            "celery": {"notes": "x", "error": "competitor venv could not be installed"},
        },
        "redis_benchmark": {"EVALSHA_c50": 80000.0},
    }  # fmt: skip
    (out / "queues.json").write_text(json.dumps(queues))
    path = report.write(out, tmp_path)
    text = path.read_text()
    assert "| jobqueue | 3,000 | 0.80 / 2.00 |" in text
    assert "| arq | 1,000 | failed: boom |" in text
    assert "not run: competitor venv could not be installed" in text
    assert "no-op c10: 3.00x arq" in text
    assert "target <= 0.5 ms, issue 20: not met" in text
    assert "target >= 10,000: not met" in text


def test_a_section_without_json_keeps_what_results_said(tmp_path: Path) -> None:
    """Re-running one section (say autoscale) in a checkout without the other sections' JSON
    must not drop their results from RESULTS.md."""
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "RESULTS.md").write_text(
        "# Benchmark results\n\nintro\n\n## 1. Queue throughput\n\nqueue figures\n\n"
        "## 2. The autoscaler\n\nold autoscale\n\n## 3. The operator\n\noperator figures\n"
    )
    (out / "autoscale.json").write_text(json.dumps({"error": "boom", "meta": {}}))
    text = report.write(out, tmp_path).read_text()
    assert "queue figures" in text and "operator figures" in text
    assert "old autoscale" not in text and "Section failed: boom" in text
    assert text.index("## 1.") < text.index("## 2.") < text.index("## 3.")
