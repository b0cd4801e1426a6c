"""A pytest plugin (``pytest_plugins = ["screenshot_report"]``): lists the dashboard's
screenshots of this run (browser.Browser.shot) at the end of the output."""

from __future__ import annotations

from typing import Any

from browser import SCREENSHOTS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SCREENSHOTS:
        terminalreporter.section("dashboard screenshots")
        for path in SCREENSHOTS:
            terminalreporter.write_line(str(path))
