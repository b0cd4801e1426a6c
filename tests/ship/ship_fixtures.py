"""Fixtures for the packaging tests: the helm binary and a chart renderer.

Loaded by test modules with ``pytest_plugins = ["ship_fixtures"]``: a conftest.py here would be
imported as the module ``conftest`` and shadow other directories' conftest modules that their
tests import by name.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from ship_helpers import CHART, KUBE_VERSION, Render, tools_bin


@pytest.fixture(scope="session")
def helm() -> Path:
    path = Path(os.environ.get("HELM", str(tools_bin() / "helm")))
    if not path.exists():
        pytest.fail(f"helm is missing at {path}: run `make tools` (hack/build-tools.sh)")
    return path


@pytest.fixture(scope="session")
def render(helm: Path) -> Render:
    """`helm template` of the chart with --set values; returns the rendered objects."""

    def _render(*sets: str, namespace: str = "jobqueue-system") -> list[dict[str, Any]]:
        args = [str(helm), "template", "jq", str(CHART), "--namespace", namespace]
        args += ["--kube-version", KUBE_VERSION]
        for value in sets:
            args += ["--set", value]
        out = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return [doc for doc in yaml.safe_load_all(out.stdout) if doc]

    return _render
