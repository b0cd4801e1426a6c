"""One connection setting for every topology: what each URL scheme means, and what a bad URL is
told (pure parsing; the clients made are checked without connecting)."""

from __future__ import annotations

import pytest
from jobqueue.connection import ClientOptions, connect
from jobqueue.endpoints import Topology, parse_redis_url
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import BlockingConnectionPool, SSLConnection
from redis.asyncio.sentinel import SentinelConnectionPool, SentinelManagedSSLConnection


def test_one_server_with_tls_user_database_and_options() -> None:
    ep = parse_redis_url("rediss://jobs:s3cret@redis.example:6380/3?ssl_ca_certs=/ca.crt"
                         "&socket_timeout=2.5&ssl_check_hostname=false")  # fmt: skip
    assert (ep.topology, ep.tls, ep.hosts, ep.db) == (
        Topology.STANDALONE,
        True,
        (("redis.example", 6380),),
        3,
    )
    assert (ep.username, ep.password) == ("jobs", "s3cret")
    assert ep.options == {"ssl_ca_certs": "/ca.crt", "socket_timeout": 2.5,
                          "ssl_check_hostname": False}  # fmt: skip


def test_sentinel_url_names_its_sentinels_the_master_and_the_database() -> None:
    ep = parse_redis_url("redis+sentinel://a.example,b.example:5000,[::1]:26380/queues/2")
    assert ep.topology is Topology.SENTINEL and not ep.tls
    assert ep.hosts == (("a.example", 26379), ("b.example", 5000), ("::1", 26380))
    assert (ep.master, ep.db) == ("queues", 2)
    assert parse_redis_url("rediss+sentinel://s:1/m").tls


def test_cluster_url_names_startup_nodes_and_has_only_database_0() -> None:
    ep = parse_redis_url("redis+cluster://u@n1:7000,n2")
    assert ep.topology is Topology.CLUSTER
    assert ep.hosts == (("n1", 7000), ("n2", 6379))
    assert ep.username == "u" and ep.password is None
    assert parse_redis_url("rediss+cluster://n1:7000/0").tls


def test_wait_replicas_and_sentinel_credentials_are_ours_not_redis_pys() -> None:
    ep = parse_redis_url(
        "redis+sentinel://s/m?wait_replicas=1&wait_timeout=0.5&sentinel_username=watch"
        "&sentinel_password=pw"
    )
    assert (ep.wait_replicas, ep.wait_timeout) == (1, 0.5)
    assert (ep.sentinel_username, ep.sentinel_password) == ("watch", "pw")
    assert ep.options == {}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://x", "must start with one of redis://"),
        ("redis://a:1,b:2", "names one server"),
        ("redis+sentinel://s:26379", "names the master after the hosts"),
        ("redis+sentinel://s:26379/m/x", "database 'x' is not a number"),
        ("redis+cluster://n:7000/1", "only database 0"),
        ("redis://h:port", "not a valid host:port"),
        ("redis://h:1,", "needs a host"),
        ("redis://h?sockettimeout=1", "unknown option 'sockettimeout'"),
        ("redis://h?socket_timeout=soon", "socket_timeout='soon' is not valid"),
        ("redis://h?wait_replicas=many", "wait_replicas='many'"),
        ("redis://h?wait_timeout=60", "wait_timeout='60'"),
        ("redis://h?sentinel_password=x", "need redis+sentinel://"),
        ("unix://", "needs the socket's path"),
    ],
)
def test_a_bad_url_is_refused_naming_the_problem(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("?", "\\?").replace("+", "\\+")):
        parse_redis_url(url)


def test_a_refusal_never_repeats_the_password() -> None:
    with pytest.raises(ValueError) as refused:
        parse_redis_url("redis://user:hunter2@a:1,b:2/0")
    assert "hunter2" not in str(refused.value)


def test_each_scheme_makes_its_client_without_connecting() -> None:
    plain = connect("rediss://127.0.0.1:1/0?ssl_ca_certs=/ca.crt", password="pw")
    assert isinstance(plain, Redis)
    assert issubclass(plain.connection_pool.connection_class, SSLConnection)
    assert plain.connection_pool.connection_kwargs["password"] == "pw"

    master = connect("rediss+sentinel://127.0.0.1:1,127.0.0.1:2/mymaster/4")
    assert isinstance(master, Redis)
    pool = master.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "mymaster"
    assert pool.connection_class is SentinelManagedSSLConnection
    assert pool.connection_kwargs["db"] == 4
    assert [s.connection_pool.connection_kwargs["port"] for s in pool.sentinel_manager.sentinels
            ] == [1, 2]  # fmt: skip

    cluster = connect("redis+cluster://127.0.0.1:1,127.0.0.1:2", password="pw")
    assert isinstance(cluster, RedisCluster)
    assert [n.port for n in cluster.nodes_manager.startup_nodes.values()] == [1, 2]


def test_a_cluster_refuses_options_it_has_not() -> None:
    with pytest.raises(ValueError, match="'timeout' is not supported with a Redis Cluster"):
        connect("redis+cluster://127.0.0.1:1?timeout=3")


def test_pool_options_make_a_blocking_pool_for_one_server() -> None:
    options = ClientOptions(max_connections=4, pool_timeout=2.0, socket_timeout=1.0)
    client = connect("redis://127.0.0.1:1/0", options=options)
    assert isinstance(client.connection_pool, BlockingConnectionPool)
    assert client.connection_pool.max_connections == 4
    # the URL's own socket options win over the caller's defaults
    client = connect("redis://127.0.0.1:1/0?socket_timeout=7", options=options)
    assert client.connection_pool.connection_kwargs["socket_timeout"] == 7.0


def test_pool_options_make_a_blocking_pool_for_a_sentinel_master_too() -> None:
    options = ClientOptions(max_connections=3, pool_timeout=2.0)
    master = connect("redis+sentinel://127.0.0.1:1/m", options=options)
    pool = master.connection_pool
    assert isinstance(pool, BlockingConnectionPool) and isinstance(pool, SentinelConnectionPool)
    assert (pool.max_connections, pool.timeout) == (3, 2.0)


def test_one_server_clients_pack_commands_with_hiredis() -> None:
    """redis-py's asyncio client packs in pure Python (~10x slower per submit); ours use its
    hiredis serializer, which packs the same bytes, for TCP, TLS and Unix sockets alike."""
    from jobqueue.packing import HiredisConnection, HiredisSSLConnection, HiredisUnixConnection

    for url, expected in [
        ("redis://127.0.0.1:6379/0", HiredisConnection),
        ("rediss://127.0.0.1:6380/0", HiredisSSLConnection),
        ("unix:///tmp/redis.sock", HiredisUnixConnection),
    ]:
        client = connect(url)
        assert isinstance(client, Redis)
        assert client.connection_pool.connection_class is expected, url
    # hiredis encodes text as strict UTF-8 (the only encoding our URLs allow); another one,
    # set through the API, keeps redis-py's packer
    from jobqueue.packing import packing_class
    from redis.asyncio.connection import Connection

    assert packing_class(Connection, {"encoding": "latin-1"}) is Connection
    assert packing_class(Connection, {"encoding_errors": "replace"}) is Connection


def test_hiredis_packing_sends_what_redis_py_would_and_refuses_the_same_inputs() -> None:
    from jobqueue.packing import HiredisConnection
    from redis.asyncio.connection import Connection
    from redis.exceptions import DataError

    ours, theirs = HiredisConnection(), Connection()
    for args in [
        ("EVALSHA", "a" * 40, 2, "{jq:q}:queued", "{jq:q}:job:", "", 1, '{"é":"☃"}', 0.1, 2**70),
        ("SCRIPT LOAD", "return 1"),
        ("SET", b"k", b"\x00\xff", "PX", 5),
        ("SET", "k", bytearray(b"\x01"), "GET"),  # the serializer's path: hiredis refuses it
        ("SET", "k", memoryview(b"\x02")),
        (b"CLIENT SETNAME", "x"),
        ("CONFIG\tGET", "maxmemory"),  # any whitespace splits a command name
        ("HSET", "k", "f", -1.5e-7, "g", float("inf")),
    ]:
        assert b"".join(ours.pack_command(*args)) == b"".join(theirs.pack_command(*args))
    for bad in (None, True):
        with pytest.raises(DataError):
            ours.pack_command("SET", "k", bad)
