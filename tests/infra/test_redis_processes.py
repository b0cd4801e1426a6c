"""The test servers themselves: a redis-server whose port was chosen for it still starts when
somebody takes that port between the choice and the bind (CI lost a Redis Cluster test to
exactly that), and cluster ports are chosen where outgoing connections cannot take them."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redisproc
import redistopology
from redisproc import PortTaken, RedisProcess, free_port
from redistopology import ClusterSet

pytestmark = pytest.mark.redis


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port somebody listens on for the whole test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_server_whose_chosen_port_was_taken_starts_on_another(
    tmp_path: Path, taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first choice is taken by the time the server binds it, as when a concurrent
    # connection's ephemeral port lands on it.
    choices = iter([taken_port])
    monkeypatch.setattr(redisproc, "free_port", lambda: next(choices, None) or free_port())
    with RedisProcess(tmp_path) as server:
        assert server.port != taken_port
        assert server.client().ping()


def test_a_server_on_a_port_the_caller_fixed_names_the_taken_port(
    tmp_path: Path, taken_port: int
) -> None:
    with pytest.raises(PortTaken, match=str(taken_port)):
        RedisProcess(tmp_path, taken_port).start()


def test_cluster_ports_and_their_bus_ports_lie_below_the_ephemeral_range() -> None:
    low = redistopology._ephemeral_low()
    taken: set[int] = set()
    for _ in range(50):
        port = redistopology.free_cluster_port(taken)
        assert port + 10000 < low
        taken |= {port, port + 10000}


def test_a_cluster_node_whose_port_was_taken_starts_on_another(
    tmp_path: Path, taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = redistopology.free_cluster_port
    choices = iter([taken_port])
    monkeypatch.setattr(
        redistopology, "free_cluster_port", lambda taken: next(choices, None) or real(taken)
    )
    nodes = ClusterSet(tmp_path, masters=3).start()
    try:
        ports = [port for _, port in nodes.startup_nodes]
        assert taken_port not in ports and len(set(ports)) == 3
        with redis.Redis(port=ports[0], decode_responses=True) as client:
            assert client.cluster("info")["cluster_state"] == "ok"
    finally:
        nodes.stop()
