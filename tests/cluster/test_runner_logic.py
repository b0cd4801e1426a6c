"""Pure pieces of the pod runner: $(VAR) expansion, crash-loop backoff, pod addresses."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from localcluster import podnet
from localcluster.container import Backoff
from localcluster.podenv import ContainerConfigError, argv, expand


def test_expand_like_kubernetes() -> None:
    env = {"A": "x", "B": "y"}
    assert expand("$(A)-$(B)", env) == "x-y"
    assert expand("$(MISSING)", env) == "$(MISSING)"
    assert expand("$$(A)", env) == "$(A)"
    assert expand("cost $5", env) == "cost $5"


def test_argv_needs_a_command() -> None:
    assert argv({"name": "c", "command": ["echo", "$(A)"], "args": ["$(A)"]}, {"A": "1"}) == [
        "echo",
        "1",
        "1",
    ]
    with pytest.raises(ContainerConfigError, match=r"set spec\.containers"):
        argv({"name": "c", "args": ["x"]}, {})


def test_backoff_doubles_from_the_second_crash_and_is_capped() -> None:
    backoff = Backoff(initial=10, cap=300)
    assert [backoff.delay(n) for n in range(8)] == [0, 10, 20, 40, 80, 160, 300, 300]
    assert backoff.reset_after == 600


def test_ip_pool_distinct_round_robin_and_reuse_of_wanted() -> None:
    pool = podnet.IpPool(ipaddress.IPv4Network("127.9.0.0/30"))  # two usable addresses
    a, b = pool.take(), pool.take()
    assert {a, b} == {"127.9.0.1", "127.9.0.2"}
    with pytest.raises(podnet.PodNetworkBusy):
        pool.take()
    pool.give_back(a)
    assert pool.take() == a
    pool.give_back(b)
    assert pool.take(wanted=b) == b
    pool.give_back(b)
    assert pool.take(wanted="10.0.0.1") == b  # outside the network: a fresh one instead


def test_two_clusters_never_share_a_pod_network(tmp_path: Path) -> None:
    first, lock1 = podnet.claim(tmp_path / "one")
    second, lock2 = podnet.claim(tmp_path / "one")  # same preference, already taken
    try:
        assert first != second
        assert first.subnet_of(ipaddress.IPv4Network("127.0.0.0/8"))
        assert str(first.network_address) != "127.0.0.0"
    finally:
        lock1.close()
        lock2.close()
    third, lock3 = podnet.claim(tmp_path / "one")  # released on close: first choice again
    lock3.close()
    assert third == first
