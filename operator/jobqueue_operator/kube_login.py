"""Credentials for the API server, without the official Kubernetes client.

The operator makes plain REST calls (kube_http.py) and kopf brings its own aiohttp, so the
official client is not needed to talk to the API server; it is not imported, and not
installed by the ``operator`` extra. Importing it cost the operator about 45 MB of memory:
kopf imports ``kubernetes.client`` whenever it is installed (to recognise its model
classes), and each API class the operator used built its pydantic signatures at import.

Credentials come from kopf's own minimal logins: the pod's ServiceAccount, else the
kubeconfig ($KUBECONFIG or ~/.kube/config) with a token or a client certificate. A
kubeconfig whose user runs an ``exec`` plugin or an auth provider (cloud CLIs) needs the
official client to run it; ``login_via_client`` is tried then, when it is installed.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import aiohttp
import kopf

log = logging.getLogger(__name__)

# Connections kopf may hold open to the API server for its requests, beside its watch
# streams. kopf's own session sets no limit: with 1,000 JobQueues starting at once it opened
# a connection per concurrent patch, each with its TLS buffers. Requests past the limit
# wait for a free connection.
KOPF_CONNECTIONS = 16
# Watch streams per watched namespace (JobQueues, Deployments); each holds a connection for
# as long as it streams, so they must fit beside the requests or a watch would never start.
WATCHES_PER_NAMESPACE = 2


def kopf_connection_limit(namespaces: tuple[str, ...]) -> int:
    """The connection limit of kopf's session watching ``namespaces`` (empty: the whole
    cluster, one stream per resource); 0, no limit, for glob patterns, whose namespaces
    are not known in advance."""
    if any(c in ns for ns in namespaces for c in "*?[!"):
        return 0
    return KOPF_CONNECTIONS + WATCHES_PER_NAMESPACE * max(1, len(namespaces))


class NoCredentials(Exception):
    """Neither a ServiceAccount nor a usable kubeconfig was found."""


def _has_credentials(info: kopf.ConnectionInfo) -> bool:
    return bool(
        info.token
        or info.scheme
        or (info.username and info.password)
        or info.certificate_path
        or info.certificate_data
    )


def _in_cluster(settings: kopf.OperatorSettings) -> kopf.ConnectionInfo | None:
    """The pod's ServiceAccount. The server is the address the kubelet puts in the
    environment, as client-go and the official client use: kopf's default names
    kubernetes.default.svc, which makes every API call depend on cluster DNS."""
    info = kopf.login_with_service_account(settings=settings)
    host, port = (
        os.environ.get("KUBERNETES_SERVICE_HOST"),
        os.environ.get("KUBERNETES_SERVICE_PORT"),
    )
    if info is None or not host or not port:
        return info
    host = f"[{host}]" if ":" in host else host  # an IPv6 address
    return dataclasses.replace(info, server=f"https://{host}:{port}")


def connection() -> kopf.ConnectionInfo:
    """The API server and credentials to use, read afresh (a rotated ServiceAccount token
    is picked up by calling this again)."""
    settings = kopf.OperatorSettings()
    info = _in_cluster(settings) or kopf.login_with_kubeconfig(settings=settings)
    if info is not None and _has_credentials(info):
        return info
    # An exec plugin or auth provider: only the official client can run it.
    try:
        via_client = kopf.login_via_client(logger=log, settings=settings)
    except ImportError:  # pragma: no cover - kopf returns None when it is missing
        via_client = None
    if via_client is not None:
        return via_client
    if info is not None:
        raise NoCredentials(
            "the kubeconfig's user has no token or client certificate; an exec plugin or "
            "auth provider needs the official client: pip install kubernetes"
        )
    raise NoCredentials(
        "no Kubernetes credentials: no ServiceAccount token is mounted, and neither "
        "$KUBECONFIG nor ~/.kube/config exists"
    )


def session(info: kopf.ConnectionInfo, limit: int) -> aiohttp.ClientSession:
    """An aiohttp session to the API server with ``info``'s TLS settings and credentials,
    holding at most ``limit`` connections."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        proxy=info.proxy_url,
        trust_env=bool(info.trust_env),
    )
