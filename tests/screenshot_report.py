"""A pytest plugin (registered by tests/conftest.py): lists the dashboard's screenshots taken
during this run (tests/web/browser.py writes them) at the end of the output.

It reads the output directory rather than a list kept in memory, because under pytest-xdist
the screenshots are taken in worker processes and the summary is written by the controller."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
_started = time.time()


def screenshots_dir() -> Path:
    return Path(os.environ.get("JOBQ_TEST_OUTPUT", REPO / "test-output")) / "screenshots"


def pytest_sessionstart(session: pytest.Session) -> None:
    global _started
    _started = time.time() - 1  # file times may be coarser than the clock


def pytest_terminal_summary(terminalreporter: Any) -> None:
    folder = screenshots_dir()
    if not folder.is_dir():
        return
    taken = sorted(
        (p for p in folder.glob("*.png") if p.stat().st_mtime >= _started),
        key=lambda p: p.stat().st_mtime,
    )
    if taken:
        terminalreporter.section("dashboard screenshots")
        for path in taken:
            terminalreporter.write_line(str(path))
