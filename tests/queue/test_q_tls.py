"""TLS with a private CA and client certificates for every topology (servers that accept TLS
only and require a client certificate), from the URL alone: a Redis Cluster over
rediss+cluster://, a Sentinel set over rediss+sentinel://, and host name checking on by
default. (One TLS server with the operator and its Secrets: tests/operator/
test_cluster_redis_tls.py.)"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from jobqueue.client import AsyncQueue
from jobqueue_operator.sources.jobqueue import JobQueueSource, RedisPools
from redis.exceptions import ConnectionError as RedisConnectionError
from redisproc import RedisProcess, TlsFiles
from redistopology import ClusterSet, SentinelSet
from tlsfiles import Pki, make_pki

pytestmark = [pytest.mark.redis, pytest.mark.timeout(180)]


def tls_query(pki: Pki, **extra: str) -> str:
    return "?" + urlencode({"ssl_ca_certs": pki.ca_cert, "ssl_certfile": pki.client_cert,
                            "ssl_keyfile": pki.client_key, **extra})  # fmt: skip


@pytest.fixture
def tls_cluster(tmp_path: Path, tls_files: TlsFiles) -> Iterator[ClusterSet]:
    nodes = ClusterSet(tmp_path / "cluster", masters=3, tls=tls_files).start()
    try:
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
def tls_sentinels(tmp_path: Path, tls_files: TlsFiles) -> Iterator[SentinelSet]:
    sentinels = SentinelSet(tmp_path / "sentinel", tls=tls_files).start()
    try:
        yield sentinels
    finally:
        sentinels.stop()


async def run_through(url: str, queue: str) -> None:
    """Submit, run with a real ``jobq worker``, read back, and read as the operator."""
    async with AsyncQueue(queue, url) as q:
        ids = await q.submit_many([{"name": "debug.echo", "payload": i} for i in range(10)])
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "jobqueue.cli", "--redis", url, "worker", queue, "--burst",
            env={**os.environ, "JOBQUEUE_METRICS_PORT": "0"}, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(worker.communicate(), 90)
        assert worker.returncode == 0, err.decode()
        assert [(await q.get(i)).result for i in ids] == list(range(10))
    pools = RedisPools()
    source = JobQueueSource(pools, url, queue)
    try:
        assert (await source.read()).metrics.queued == 0
    finally:
        await source.close()


async def test_a_cluster_over_tls_with_client_certificates(
    tls_cluster: ClusterSet, pki: Pki
) -> None:
    assert tls_cluster.url.startswith("rediss+cluster://")
    await run_through(tls_cluster.url + tls_query(pki), "tls-cluster")


async def test_a_sentinel_set_over_tls_with_client_certificates(
    tls_sentinels: SentinelSet, pki: Pki
) -> None:
    assert tls_sentinels.url.startswith("rediss+sentinel://")
    await run_through(tls_sentinels.url + tls_query(pki), "tls-sentinel")


async def test_the_host_name_is_checked_unless_told_otherwise(tmp_path: Path) -> None:
    other = make_pki(tmp_path / "pki", server_names=("redis.other.test",))
    files = TlsFiles(ca_cert=other.ca_cert, cert=other.node_cert, key=other.node_key)
    with RedisProcess(tmp_path / "redis", tls=files) as server:
        base = f"rediss://localhost:{server.port}/0"
        async with AsyncQueue("q", base + tls_query(other)) as q:
            with pytest.raises(RedisConnectionError, match=r"hostname|match"):
                await q.submit("noop")  # the certificate names redis.other.test only
        async with AsyncQueue("q", base + tls_query(other, ssl_check_hostname="false")) as q:
            await q.submit("noop")
        async with AsyncQueue("q", base) as q:  # no CA given: the system's CAs refuse it
            with pytest.raises(RedisConnectionError, match="certificate verify failed"):
                await q.submit("noop")
