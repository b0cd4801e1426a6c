"""Fixtures of the web tests (``pytest_plugins = ["web_fixtures"]``): ``tokens`` (a
Secret-like directory with a write and a read token) and ``web`` (the app on a loopback port
against the test's redis-server), ``crd`` (the JobQueue CRD of crds/ on the local control
plane). Also puts tests/worker on sys.path for worker_fixtures.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from jobqueue_web.app import WebConfig
from jobqueue_web.auth import TokenSet
from web_helpers import REPO, Tokens, Web, serve, write_tokens

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "worker"))


@pytest.fixture
def tokens(tmp_path: Path) -> Tokens:
    return write_tokens(tmp_path / "tokens")


@pytest.fixture
async def web(redis_url: str, tokens: Tokens) -> AsyncIterator[Web]:
    config = WebConfig(
        tokens=TokenSet.from_path(tokens.path),
        redis_url=redis_url,
        sample_seconds=0.2,
        max_body_bytes=256 * 1024,
    )
    async with serve(config, tokens, redis_url) as running:
        yield running


@pytest.fixture(scope="module")
def crd(kube_cluster: Any) -> Any:
    kube_cluster.apply((REPO / "crds" / "jobqueue.dev_jobqueues.yaml").read_text())

    said: list[str] = []

    def established() -> bool:
        # Polled, not `kubectl wait` (which failed once on a busy machine, saying nothing):
        # a read that errors is tried again, and the last answer goes into the timeout.
        answer = kube_cluster.kubectl(
            "get", "crd", "jobqueues.jobqueue.dev", "-o",
            "jsonpath={.status.conditions[?(@.type=='Established')].status}",
            check=False,
        )  # fmt: skip
        said[:] = [answer.stdout.strip() or answer.stderr.strip()]
        return answer.returncode == 0 and answer.stdout.strip() == "True"

    try:
        kube_cluster.wait_for(established, timeout=60, message="the JobQueue CRD Established")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; kubectl said {said}") from None
    kube_cluster.wait_for(
        lambda: kube_cluster.kubectl("get", "jq", "-A", check=False).returncode == 0,
        timeout=30,
        message="jobqueues served",
    )
    return kube_cluster
