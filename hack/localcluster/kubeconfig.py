"""Kubeconfig files: client certificates for the admin and the controllers, a bearer token
for the service-account identity of a pod."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

CLUSTER = "localcluster"


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _document(server: str, ca: Path, user: dict[str, Any], namespace: str | None) -> dict[str, Any]:
    context: dict[str, Any] = {"cluster": CLUSTER, "user": "user"}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CLUSTER,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca)},
            }
        ],
        "users": [{"name": "user", "user": user}],
        "contexts": [{"name": CLUSTER, "context": context}],
        "current-context": CLUSTER,
    }


def _write(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(path)


def write_cert_kubeconfig(path: Path, server: str, ca: Path, cert: Path, key: Path) -> None:
    """A kubeconfig authenticating with a client certificate (certificates embedded)."""
    user = {"client-certificate-data": _b64(cert), "client-key-data": _b64(key)}
    _write(path, _document(server, ca, user, None))


def write_token_kubeconfig(
    path: Path, server: str, ca: Path, token_file: Path, namespace: str
) -> None:
    """A kubeconfig for a pod: the bearer token is read from a file that the runner refreshes."""
    user = {"tokenFile": str(token_file)}
    _write(path, _document(server, ca, user, namespace))
