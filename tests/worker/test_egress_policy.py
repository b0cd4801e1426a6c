"""The egress policy of ``http.request`` as a table: which destinations are refused and which
allowed. Every decision here is made from addresses alone; nothing connects anywhere (the
numeric host spellings go through getaddrinfo with AI_NUMERICHOST, which never asks DNS)."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from jobqueue.egress import (
    AllowList,
    DestinationRefused,
    allow_list_from_env,
    check_destination,
    denied_reason,
)

NOTHING = AllowList()

REFUSED = [
    # (address, a word the reason must contain)
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("0.0.0.0", "this host"),
    ("::", "unspecified"),
    ("169.254.169.254", "metadata"),  # AWS, GCP, Azure, OpenStack metadata
    ("169.254.170.2", "link-local"),  # ECS task metadata
    ("fd00:ec2::254", "unique local"),  # AWS metadata over IPv6
    ("100.100.100.200", "shared"),  # Alibaba metadata
    ("192.0.0.192", "IETF"),  # Oracle Cloud metadata
    ("fe80::1", "link-local"),
    ("10.0.0.1", "private"),
    ("10.96.0.1", "private"),  # a typical cluster Service / API server address
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "shared"),
    ("198.18.0.1", "benchmarking"),
    ("192.0.2.1", "documentation"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("fc00::1", "unique local"),
    ("2001:db8::1", "documentation"),
    ("2001::1", "Teredo"),
    ("fec0::1", "site-local"),
    # IPv6 spellings of IPv4 hosts are judged as the IPv4 host
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "metadata"),
    ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64 of 169.254.169.254
    ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
    ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
]

ALLOWED = [
    "93.184.215.14",
    "1.1.1.1",
    "8.8.8.8",
    "172.32.0.1",  # just past 172.16.0.0/12
    "100.128.0.1",  # just past 100.64.0.0/10
    "2606:4700:4700::1111",
    "2a00:1450:4001:81b::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "2002:808:808::",  # 6to4 of 8.8.8.8
]


@pytest.mark.parametrize(("address", "word"), REFUSED)
def test_refused_by_default(address: str, word: str) -> None:
    ip = ipaddress.ip_address(address)
    reason = denied_reason(ip)
    assert reason is not None and word in reason
    with pytest.raises(DestinationRefused, match="destination refused"):
        check_destination(address, [ip], NOTHING)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert denied_reason(ip) is None
    check_destination(address, [ip], NOTHING)


def addresses(*texts: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    return [ipaddress.ip_address(t) for t in texts]


@pytest.mark.parametrize(
    ("allow", "host", "resolved", "allowed"),
    [
        # networks open exactly their range
        (["10.0.0.0/8"], "api.internal", ["10.1.2.3"], True),
        (["10.0.0.0/8"], "api.internal", ["11.1.2.3"], True),  # public anyway
        (["10.0.0.0/8"], "api.internal", ["192.168.0.1"], False),
        (["10.1.2.3"], "10.1.2.3", ["10.1.2.3"], True),
        (["10.1.2.3"], "10.1.2.4", ["10.1.2.4"], False),
        (["fd00::/8"], "v6.internal", ["fd12::1"], True),
        (["127.0.0.1/32"], "::ffff:127.0.0.1", ["::ffff:127.0.0.1"], True),
        # a private network in the list does not open loopback or metadata
        (["10.0.0.0/8"], "x", ["127.0.0.1"], False),
        (["10.0.0.0/8"], "x", ["169.254.169.254"], False),
        # host names: exact, or every name below a "*." suffix; any address they resolve to
        (["redis-admin.ops.svc.cluster.local"], "redis-admin.ops.svc.cluster.local",
         ["10.96.3.4"], True),
        (["Redis-Admin.ops.svc.cluster.local."], "redis-admin.OPS.svc.cluster.local",
         ["10.96.3.4"], True),
        (["*.svc.cluster.local"], "web.shop.svc.cluster.local", ["10.96.0.9"], True),
        (["*.svc.cluster.local"], "svc.cluster.local", ["10.96.0.9"], False),
        (["*.svc.cluster.local"], "evil-svc.cluster.local", ["10.96.0.9"], False),
        (["api.internal"], "api.internal.evil.com", ["10.0.0.1"], False),
        # one refused answer refuses the host, whatever else it resolves to
        ([], "rebind.example", ["93.184.215.14", "127.0.0.1"], False),
        (["10.0.0.0/8"], "mixed.example", ["10.0.0.1", "169.254.169.254"], False),
        ([], "nothing.example", [], False),
    ],
)  # fmt: skip
def test_allow_list(allow: list[str], host: str, resolved: list[str], allowed: bool) -> None:
    policy = AllowList.parse(allow)
    if allowed:
        check_destination(host, addresses(*resolved), policy)
    else:
        with pytest.raises(DestinationRefused):
            check_destination(host, addresses(*resolved), policy)


@pytest.mark.parametrize(
    "host",
    # Spellings of 127.0.0.1 that a URL parser may pass on as a host name; the system
    # resolver turns each into the loopback address, and that address is what is judged.
    ["2130706433", "0x7f.1", "0177.0.0.1", "127.1", "0x7f000001"],
)
def test_numeric_spellings_of_loopback_are_refused(host: str) -> None:
    infos = socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    resolved = addresses(*{info[4][0] for info in infos})
    assert resolved == addresses("127.0.0.1")
    with pytest.raises(DestinationRefused, match=r"\(127\.0\.0\.1\) is in a range.*loopback"):
        check_destination(host, resolved, NOTHING)


def test_the_refusal_names_the_way_to_allow() -> None:
    with pytest.raises(DestinationRefused) as refused:
        check_destination("metadata.google.internal", addresses("169.254.169.254"), NOTHING)
    message = str(refused.value)
    assert "metadata.google.internal (169.254.169.254)" in message
    assert "JOBQUEUE_HTTP_ALLOW" in message and "spec.worker.httpAllow" in message


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ("10.0.0.1/8", "not a valid network"),  # host bits set: a typo more often than not
        ("10.0.0.0/33", "not a valid network"),
        ("300.1.2.3", "not a valid network"),
        ("fd00::/129", "not a valid network"),
        ("http://api.internal", "neither a network"),
        ("api internal", "neither a network"),
        ("*", "neither a network"),
    ],
)
def test_bad_entries_are_named(entry: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment) as bad:
        AllowList.parse(["10.0.0.0/8", entry])
    assert repr(entry) in str(bad.value)


def test_allow_list_from_env_splits_on_commas() -> None:
    policy = allow_list_from_env({"JOBQUEUE_HTTP_ALLOW": " 10.0.0.0/8 , *.svc.cluster.local,,"})
    assert policy.allows_address(ipaddress.ip_address("10.9.9.9"))
    assert policy.allows_host("a.b.svc.cluster.local")
    assert not allow_list_from_env({})
