"""Shared pytest configuration: fixtures live in plugin modules beside this file.

fixtures_redis: a real redis-server (and a three-master Redis Cluster) on free ports.
fixtures_kube:  the local Kubernetes control plane and pod runner (hack/localcluster.py).
"""

pytest_plugins = ["fixtures_redis", "fixtures_kube"]
