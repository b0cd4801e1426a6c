"""Which network destinations a job may reach: the egress policy of the built-in handlers.

``http.request`` runs whatever URL a job names, from inside the cluster: without a policy a
job could read cloud metadata (169.254.169.254), the API server, cluster Services or the
worker's own loopback, and get the answer back as its result (server-side request forgery).
So, by default, every address that is not globally routable is refused: loopback,
link-local, private, shared (CGNAT), multicast, documentation and reserved ranges, and IPv6
addresses that embed such an IPv4 address. An allow list opens exceptions, by network or by
host name (``JOBQUEUE_HTTP_ALLOW``, set from a JobQueue's ``spec.worker.httpAllow``).

This module is pure (stdlib only) and decides from addresses already resolved, so the
decision can be tested without connecting anywhere; the caller resolves a host once and
connects to an address it checked here (no second lookup an attacker's DNS could answer
differently).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "ALLOW_ENV",
    "AllowList",
    "DestinationRefused",
    "IPAddress",
    "allow_list_from_env",
    "check_destination",
    "denied_reason",
]

ALLOW_ENV = "JOBQUEUE_HTTP_ALLOW"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# IANA's special-purpose registries, with the reason a job may not reach each range.
# Anything else that Python does not count as global is refused too (see denied_reason).
_DENIED: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(net), reason)
    for net, reason in (
        ("0.0.0.0/8", "'this host' range"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared address space (carrier-grade NAT, some clouds' metadata)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (cloud metadata)"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignments (some clouds' metadata)"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("2001::/32", "Teredo"),
        ("2001:2::/48", "benchmarking"),
        ("2001:10::/28", "ORCHID"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "segment routing"),
        ("fc00::/7", "unique local (private, some clouds' metadata)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
        ("::/8", "reserved"),
    )
)
# An entry meant as an address or network (so a typo in it is reported as one).
_LOOKS_NUMERIC = re.compile(r"[0-9./]+|[0-9a-fA-F.]*:[0-9a-fA-F:.]*(/[0-9]*)?")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# A DNS name as an allow-list entry: labels of letters, digits and hyphens; "*." in front
# allows every name below it.
_HOST_NAME = re.compile(
    r"^(\*\.)?(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)


class DestinationRefused(Exception):
    """The egress policy refuses the destination; retrying cannot change that."""


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4), if any: each is
    a way to reach an IPv4 host, so it is judged as that host."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def denied_reason(ip: IPAddress) -> str | None:
    """Why the default policy refuses ``ip`` (e.g. "loopback"); None for a public address."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        reason = denied_reason(embedded)
        return None if reason is None else f"{reason}, as IPv4 {embedded} inside IPv6"
    for network, reason in _DENIED:
        if ip.version == network.version and ip in network:
            return reason
    if not ip.is_global:
        return "not globally routable"
    return None


def _normal_host(host: str) -> str:
    return host.strip().rstrip(".").lower()


@dataclass(frozen=True)
class AllowList:
    """Exceptions to the default policy: networks, host names and ``*.`` domain suffixes.

    An allowed host name may resolve to any address (its DNS is trusted as the allow list
    names it); any other host is allowed only when every address it resolves to is public
    or inside an allowed network.
    """

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """From entries such as ``10.0.0.0/8``, ``fd00::1``, ``api.internal``,
        ``*.svc.cluster.local``; ValueError names the first bad entry."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        suffixes: list[str] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry))
                continue
            except ValueError as exc:
                if _LOOKS_NUMERIC.fullmatch(entry):
                    raise ValueError(f"{entry!r} is not a valid network: {exc}") from None
            name = _normal_host(entry)
            if not _HOST_NAME.match(name):
                raise ValueError(
                    f"{entry!r} is neither a network (10.0.0.0/8, fd00::/8, 192.0.2.7) nor a "
                    "host name (api.example.com, *.example.com)"
                )
            if name.startswith("*."):
                suffixes.append(name[1:])
            else:
                hosts.add(name)
        return cls(tuple(networks), frozenset(hosts), tuple(suffixes))

    def allows_host(self, host: str) -> bool:
        name = _normal_host(host)
        return name in self.hosts or any(name.endswith(s) for s in self.suffixes)

    def allows_address(self, ip: IPAddress) -> bool:
        candidates = [ip]
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            candidates.append(embedded)
        return any(
            c.version == net.version and c in net for c in candidates for net in self.networks
        )

    def __bool__(self) -> bool:
        return bool(self.networks or self.hosts or self.suffixes)


def check_destination(host: str, addresses: Sequence[IPAddress], allow: AllowList) -> None:
    """Raise DestinationRefused unless a connection to ``host`` at any of ``addresses`` is
    allowed. A host whose answers mix allowed and refused addresses is refused: a DNS
    answer naming a private address is not to be trusted for the public ones either."""
    if not addresses:
        raise DestinationRefused(f"{host} resolves to no address")
    if allow.allows_host(host):
        return
    for ip in addresses:
        reason = denied_reason(ip)
        if reason is not None and not allow.allows_address(ip):
            who = str(ip) if host == str(ip) else f"{host} ({ip})"
            raise DestinationRefused(
                f"destination refused: {who} is in a range jobs may not reach ({reason}); "
                f"allow it with {ALLOW_ENV} (spec.worker.httpAllow)"
            )


@functools.lru_cache(maxsize=8)
def _parse_cached(text: str) -> AllowList:
    return AllowList.parse(text.split(","))


def allow_list_from_env(env: Mapping[str, str]) -> AllowList:
    """The allow list of ``JOBQUEUE_HTTP_ALLOW`` (comma-separated entries)."""
    return _parse_cached(env.get(ALLOW_ENV, ""))
