"""Fixtures for replicated Redis topologies on loopback (hack/redistopology.py), started only by
the tests that ask for them.

``pki`` (session): a private CA and certificates (tests/tlsfiles.py); ``tls_files``: the
files a TLS-only server uses (client certificates required). ``sentinel_set``: one master,
two replicas, three sentinels (a master is judged down after 1 s). ``replicated_cluster``:
three masters with a replica each (a node is judged failed after 1 s). Both are made per
test: the tests fail them over.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hack"))
from redisproc import TlsFiles
from redistopology import ClusterSet, SentinelSet
from tlsfiles import Pki, make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), server_names=("localhost",))


@pytest.fixture(scope="session")
def tls_files(pki: Pki) -> TlsFiles:
    return TlsFiles(ca_cert=pki.ca_cert, cert=pki.node_cert, key=pki.node_key)


@pytest.fixture
def sentinel_set(tmp_path: Path) -> Iterator[SentinelSet]:
    topology = SentinelSet(tmp_path / "sentinel").start()
    try:
        yield topology
    finally:
        topology.stop()


@pytest.fixture
def replicated_cluster(tmp_path: Path) -> Iterator[ClusterSet]:
    topology = ClusterSet(tmp_path / "cluster", masters=3, replicas=1, node_timeout_ms=1000)
    topology.start()
    try:
        yield topology
    finally:
        topology.stop()
