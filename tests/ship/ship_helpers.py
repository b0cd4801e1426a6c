"""Helpers shared by the packaging tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "jobqueue-operator"
RENDER_SCRIPT = REPO / "hack" / "render-manifests.sh"


def _pinned_kube_version() -> str:
    """The Kubernetes version hack/build-tools.sh builds (helm template has no server to ask)."""
    for line in (REPO / "hack" / "build-tools.sh").read_text().splitlines():
        if line.startswith("K8S_VERSION="):
            return line.split("=", 1)[1].strip()
    raise RuntimeError("K8S_VERSION not found in hack/build-tools.sh")


KUBE_VERSION = _pinned_kube_version()

# render(*--set values, namespace=...) -> the objects `helm template` renders
Render = Callable[..., list[dict[str, Any]]]


def tools_bin() -> Path:
    out = subprocess.run(
        [str(REPO / "hack" / "build-tools.sh"), "--print-bin"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return Path(out.stdout.strip().splitlines()[-1])


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """The rendered objects of one kind (and name)."""
    return [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(obj["spec"]["template"]["spec"]["containers"])
