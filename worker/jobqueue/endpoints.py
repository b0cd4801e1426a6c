"""What a Redis URL names: one server, a Sentinel-managed master or a Redis Cluster (pure: no I/O).

One connection setting serves every part of jobqueue (``jobqueue.Queue``, ``jobq``,
``jobq worker``, the operator's ``spec.redis.url``)::

    redis://[user[:password]@]host[:port][/db][?option=value...]
    rediss://...                                     the same over TLS
    unix://[user[:password]@]/path/to/redis.sock[?db=N]
    redis+sentinel://[user[:password]@]host[:port][,host[:port]...]/MASTER[/db][?...]
    rediss+sentinel://...                            TLS to the sentinels and the servers
    redis+cluster://[user[:password]@]host[:port][,host[:port]...][?...]
    rediss+cluster://...                             TLS to every node

Sentinel hosts default to port 26379, the others to 6379; the user and password are the
Redis servers' (sentinels that want their own give ``sentinel_username`` /
``sentinel_password``). A cluster has only database 0.

Options (the query) are redis-py's connection options (``socket_timeout``,
``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_check_hostname``...) and:

``wait_replicas=N``   a submit is acknowledged only once N replicas have it (Redis WAIT),
                      so a failover that promotes one of them keeps it
``wait_timeout=S``    how long a submit waits for them (seconds, default 1); fewer replicas
                      by then fail the submit with ``ReplicationTimeout`` (the job may
                      still be there: its id is in the error)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from redis.asyncio.connection import URL_QUERY_ARGUMENT_PARSERS

__all__ = [
    "DEFAULT_WAIT_TIMEOUT_SECONDS",
    "SCHEMES",
    "RedisEndpoint",
    "Topology",
    "parse_redis_url",
]


class Topology(StrEnum):
    STANDALONE = "standalone"  # one server (or a proxy in front of several)
    SENTINEL = "sentinel"  # the master a set of sentinels names, followed across failovers
    CLUSTER = "cluster"  # Redis Cluster: keys spread over masters by hash slot


SCHEMES: dict[str, tuple[Topology, bool]] = {
    "redis": (Topology.STANDALONE, False),
    "rediss": (Topology.STANDALONE, True),
    "unix": (Topology.STANDALONE, False),
    "redis+sentinel": (Topology.SENTINEL, False),
    "rediss+sentinel": (Topology.SENTINEL, True),
    "redis+cluster": (Topology.CLUSTER, False),
    "rediss+cluster": (Topology.CLUSTER, True),
}
_SCHEME_LIST = ", ".join(f"{s}://" for s in SCHEMES)
_DEFAULT_PORT = {Topology.STANDALONE: 6379, Topology.SENTINEL: 26379, Topology.CLUSTER: 6379}

# Options redis-py takes as text besides those it parses itself (URL_QUERY_ARGUMENT_PARSERS).
_TEXT_OPTIONS = frozenset(
    {"ssl_ca_certs", "ssl_ca_path", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs",
     "ssl_ciphers", "ssl_password", "client_name"}
)  # fmt: skip
# Ours: taken out of the query before redis-py sees it.
_OWN_OPTIONS = frozenset(
    {"wait_replicas", "wait_timeout", "sentinel_username", "sentinel_password"}
)
DEFAULT_WAIT_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class RedisEndpoint:
    """A parsed Redis URL. ``options`` are redis-py connection keyword arguments."""

    topology: Topology
    tls: bool
    hosts: tuple[tuple[str, int], ...] = ()
    path: str | None = None  # unix socket
    master: str | None = None  # the sentinels' name of the master
    db: int = 0
    username: str | None = None
    password: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    wait_replicas: int = 0
    wait_timeout: float = DEFAULT_WAIT_TIMEOUT_SECONDS


def parse_redis_url(url: str) -> RedisEndpoint:
    """Parse ``url``; ValueError naming what is wrong (never echoing a password)."""
    scheme, sep, _ = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise ValueError(f"a Redis URL must start with one of {_SCHEME_LIST}")
    topology, tls = SCHEMES[scheme.lower()]
    parts = urlsplit(url)
    if parts.fragment:
        raise ValueError("a Redis URL has no #fragment")
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    username, password = _credentials(userinfo) if at else (None, None)
    raw_options = parse_qsl(parts.query, keep_blank_values=True)
    options, own = _options(raw_options, topology)
    if scheme.lower() == "unix":
        if not parts.path:
            raise ValueError("a unix:// URL needs the socket's path, e.g. unix:///run/redis.sock")
        db = int(options.pop("db", 0))
        return RedisEndpoint(topology, tls, path=unquote(parts.path), db=db, username=username,
                             password=password, options=options)  # fmt: skip
    hosts = _hosts(hostlist, _DEFAULT_PORT[topology])
    if topology is Topology.STANDALONE and len(hosts) > 1:
        raise ValueError(
            f"{scheme}:// names one server; for several use {scheme}+sentinel:// or "
            f"{scheme}+cluster://"
        )
    master, db = _path(parts.path, topology)
    db = int(options.pop("db", db))
    if topology is Topology.CLUSTER and db != 0:
        raise ValueError("a Redis Cluster has only database 0")
    return RedisEndpoint(
        topology, tls, hosts, master=master, db=db, username=username, password=password,
        options=options, **own,
    )  # fmt: skip


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    user, colon, password = userinfo.partition(":")
    return (unquote(user) or None, unquote(password) if colon and password else None)


def _hosts(hostlist: str, default_port: int) -> tuple[tuple[str, int], ...]:
    hosts: list[tuple[str, int]] = []
    for item in hostlist.split(","):
        if not item:
            raise ValueError("a Redis URL needs a host (host:port, several separated by commas)")
        try:
            one = urlsplit("//" + item)
            port = one.port
        except ValueError:
            raise ValueError(f"{item!r} is not a valid host:port") from None
        if not one.hostname:
            raise ValueError(f"{item!r} is not a valid host:port")
        hosts.append((one.hostname, port or default_port))
    return tuple(hosts)


def _path(path: str, topology: Topology) -> tuple[str | None, int]:
    """(sentinel master name, db) from the URL's path."""
    parts = [unquote(p) for p in path.split("/") if p]
    master = None
    if topology is Topology.SENTINEL:
        if not parts:
            raise ValueError(
                "a redis+sentinel:// URL names the master after the hosts: "
                "redis+sentinel://host:26379/MASTER/DB"
            )
        master, parts = parts[0], parts[1:]
    if len(parts) > 1:
        raise ValueError(f"unexpected path {path!r} (only a database number may follow)")
    if not parts:
        return master, 0
    if not parts[0].isdigit():
        raise ValueError(f"database {parts[0]!r} is not a number")
    return master, int(parts[0])


def _options(
    pairs: list[tuple[str, str]], topology: Topology
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(redis-py options, ours) from the query."""
    options: dict[str, Any] = {}
    own: dict[str, Any] = {}
    for name, value in pairs:
        if name in _OWN_OPTIONS:
            own[name] = value
        elif name in URL_QUERY_ARGUMENT_PARSERS:
            try:
                options[name] = URL_QUERY_ARGUMENT_PARSERS[name](value)
            except (TypeError, ValueError):
                raise ValueError(f"option {name}={value!r} is not valid") from None
        elif name in _TEXT_OPTIONS:
            options[name] = value
        else:
            raise ValueError(f"unknown option {name!r} in the Redis URL")
    sentinel_auth = own.get("sentinel_username") or own.get("sentinel_password")
    if sentinel_auth and topology is not Topology.SENTINEL:
        raise ValueError("sentinel_username and sentinel_password need redis+sentinel://")
    ours: dict[str, Any] = {
        "sentinel_username": own.get("sentinel_username") or None,
        "sentinel_password": own.get("sentinel_password") or None,
    }
    if "wait_replicas" in own:
        text = own["wait_replicas"]
        if not text.isdigit() or int(text) > 100:
            raise ValueError(f"wait_replicas={text!r} must be a whole number of replicas (0-100)")
        ours["wait_replicas"] = int(text)
    if "wait_timeout" in own:
        try:
            seconds = float(own["wait_timeout"])
        except ValueError:
            seconds = -1.0
        if not 0 < seconds <= 10:
            raise ValueError(f"wait_timeout={own['wait_timeout']!r} must be seconds in (0, 10]")
        ours["wait_timeout"] = seconds
    return options, ours
