"""Headless Chromium from Debian's package (/usr/bin/chromium) driven by Playwright; never a
downloaded browser. Screenshots go to ``$JOBQ_TEST_OUTPUT`` (default ``test-output/`` in the
repository), and their paths are listed at the end of the pytest run.

Every request the page makes to anything but loopback (and the hosts a test names: a pod of
the test's own local cluster, in a network namespace it created) is refused and remembered,
so a test can assert that the dashboard works offline (nothing from a CDN). The screenshot_report
plugin (tests/screenshot_report.py) lists the screenshots at the end of the run.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from screenshot_report import screenshots_dir

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("JOBQ_CHROMIUM", "/usr/bin/chromium")
# What works here as root on a machine without a network (see the env notes).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
LOOPBACK = re.compile(r"^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$")


def output_dir() -> Path:
    path = screenshots_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


def need_chromium() -> None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"{CHROMIUM} is missing: hack/bootstrap.sh installs Debian's chromium")


@dataclass
class Browser:
    page: Any
    name: str
    offsite: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def shot(self, step: str) -> Path:
        path = output_dir() / f"{self.name}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@contextmanager
def chromium(
    name: str, viewport: tuple[int, int] = (1280, 860), also: tuple[str, ...] = ()
) -> Iterator[Browser]:
    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            page = context.new_page()
            page.set_default_timeout(20_000)
            driven = Browser(page, name)

            def only_loopback(route: Any) -> None:
                host = urlsplit(route.request.url).hostname or ""
                if route.request.url.startswith("data:") or LOOPBACK.match(host) or host in also:
                    route.continue_()
                else:
                    driven.offsite.append(route.request.url)
                    route.abort()

            context.route("**/*", only_loopback)
            page.on("pageerror", lambda error: driven.errors.append(str(error)))
            yield driven
        finally:
            browser.close()
