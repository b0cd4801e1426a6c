"""Shared pytest configuration: fixtures live in plugin modules beside this file.

fixtures_redis: a real redis-server (and a three-master Redis Cluster) on free ports.
fixtures_topologies: Sentinel sets, Redis Clusters with replicas, TLS files.
fixtures_kube:  the local Kubernetes: control plane and a real node (hack/localcluster.py).
foreign_env:    the foreign queue systems' real workers (celery, rq, bullmq), installed on use.

Processes the tests start (``jobq`` commands, operators) use the environment that runs the
tests: its bin directory comes first on PATH, whether pytest was started by ``make test`` or
straight from .venv/bin. (The pods of the local cluster run images instead.)
"""

import os
import sys
from pathlib import Path

import pytest

os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])

pytest_plugins = [
    "fixtures_redis", "fixtures_topologies", "fixtures_kube", "foreign_env", "screenshot_report",
]  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The `long` tests first (the sort is stable): pytest-xdist hands tests out in this
    order, so they start at once instead of leaving one process running them at the end."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
