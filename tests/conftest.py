"""Shared pytest configuration: fixtures live in plugin modules beside this file.

fixtures_redis: a real redis-server (and a three-master Redis Cluster) on free ports.
fixtures_topologies: Sentinel sets, Redis Clusters with replicas, TLS files.
fixtures_kube:  the local Kubernetes control plane and pod runner (hack/localcluster.py).

Processes the tests start (``jobq`` commands, and the pods of the local cluster, which run
``jobq worker`` from PATH) use the environment that runs the tests: its bin directory comes
first on PATH, whether pytest was started by ``make test`` or straight from .venv/bin.
"""

import os
import sys
from pathlib import Path

os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])

pytest_plugins = ["fixtures_redis", "fixtures_topologies", "fixtures_kube"]
