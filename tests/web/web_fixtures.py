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
from fixtures_kube import install_jobqueue_crd
from jobqueue_web.app import WebConfig
from jobqueue_web.auth import TokenSet
from web_helpers import Tokens, Web, serve, write_tokens

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
    install_jobqueue_crd(kube_cluster)
    return kube_cluster
