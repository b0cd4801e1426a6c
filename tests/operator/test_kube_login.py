"""Where the operator's API credentials come from (kube_login), without the official client:
the pod's ServiceAccount at the address the kubelet gives, else a kubeconfig's token or
client certificate; a kubeconfig it cannot use is refused with the reason."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import kopf
import pytest
import yaml
from jobqueue_operator import kube_login


def _kubeconfig(path: Path, user: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    }))  # fmt: skip
    return path


def _no_service_account() -> mock._patch[mock.MagicMock]:
    return mock.patch.object(kopf, "login_with_service_account", return_value=None)


def test_a_kubeconfig_token_is_used(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path / "config", {"token": "t-1"})
    with _no_service_account(), mock.patch.dict(os.environ, {"KUBECONFIG": str(path)}):
        info = kube_login.connection()
    assert (info.server, info.token) == ("https://127.0.0.1:6443", "t-1")
    assert info.as_http_headers() == {"Authorization": "Bearer t-1"}


def test_a_kubeconfig_that_only_an_exec_plugin_can_use_is_refused_with_the_reason(
    tmp_path: Path,
) -> None:
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "cloud-cli"}}
    path = _kubeconfig(tmp_path / "config", user)
    with (
        _no_service_account(),
        mock.patch.object(kopf, "login_via_client", return_value=None),  # not installed
        mock.patch.dict(os.environ, {"KUBECONFIG": str(path)}),
        pytest.raises(kube_login.NoCredentials, match="exec plugin"),
    ):
        kube_login.connection()


def test_no_credentials_at_all_say_so(tmp_path: Path) -> None:
    env = {"KUBECONFIG": "", "HOME": str(tmp_path)}  # no ~/.kube/config either
    with (
        _no_service_account(),
        mock.patch.object(kopf, "login_via_client", return_value=None),
        mock.patch.dict(os.environ, env),
        pytest.raises(kube_login.NoCredentials, match="no ServiceAccount token"),
    ):
        kube_login.connection()


@pytest.mark.parametrize(
    ("host", "server"),
    [("10.96.0.1", "https://10.96.0.1:443"), ("fd00::1", "https://[fd00::1]:443")],
)
def test_in_a_pod_the_api_server_is_the_address_the_kubelet_gives(host: str, server: str) -> None:
    """Not kubernetes.default.svc: the operator's API calls must not depend on cluster DNS.
    (The address is only compared, never connected to.)"""
    account = kopf.ConnectionInfo(server="https://kubernetes.default.svc", token="sa")
    env = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": "443"}
    with (
        mock.patch.object(kopf, "login_with_service_account", return_value=account),
        mock.patch.dict(os.environ, env),
    ):
        info = kube_login.connection()
    assert (info.server, info.token) == (server, "sa")


@pytest.mark.parametrize(
    ("namespaces", "limit"),
    [((), 18), (("a",), 18), (tuple(f"n{i}" for i in range(30)), 76), (("team-*",), 0)],
)
def test_kopf_connections_are_bounded_with_room_for_every_watch(
    namespaces: tuple[str, ...], limit: int
) -> None:
    assert kube_login.kopf_connection_limit(namespaces) == limit


async def test_kopfs_login_gets_a_bounded_session() -> None:
    from jobqueue_operator.handlers import login

    info = kopf.ConnectionInfo(server="https://127.0.0.1:6443", token="t")
    env = {"WATCH_NAMESPACES": "a,b"}
    with (
        mock.patch.object(kube_login, "connection", return_value=info),
        mock.patch.dict(os.environ, env),
    ):
        context = await login.login()
    try:
        assert context.server == "https://127.0.0.1:6443"
        assert context.aiohttp_session.connector is not None
        assert context.aiohttp_session.connector.limit == 20
        assert context.aiohttp_session.headers["Authorization"] == "Bearer t"
    finally:
        await context.aiohttp_session.close()
