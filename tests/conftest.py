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

os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])

pytest_plugins = [
    "fixtures_redis", "fixtures_topologies", "fixtures_kube", "foreign_env", "screenshot_report",
]  # fmt: skip
