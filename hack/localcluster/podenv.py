"""A container's environment and argv, resolved as the kubelet does (minus the image).

There is no image here: a process starts from a small part of the runner's own environment
(PATH, HOME, locale, Python paths: the "image" is the current Python environment), then the
pod's envFrom and env are applied, then `$(VAR)` references are expanded.
"""

from __future__ import annotations

import base64
import os
import re
from typing import Any

from .kubeapi import ApiError, KubeApi

INHERITED = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class ContainerConfigError(Exception):
    """The pod's env cannot be resolved (missing Secret, key, unsupported field): the
    kubelet reports this as CreateContainerConfigError and retries."""


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: known names are replaced, `$$` escapes a dollar."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        return env.get(name, match.group(0))

    return _REFERENCE.sub(substitute, text)


def _field(pod: dict[str, Any], path: str) -> str:
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status", {})
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": status.get("hostIP"),
        "status.podIP": status.get("podIP"),
        "status.hostIPs": ",".join(i["ip"] for i in status.get("hostIPs", [])),
        "status.podIPs": ",".join(i["ip"] for i in status.get("podIPs", [])),
    }
    if path in simple:
        return simple[path] or ""
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return str(meta.get(match.group(1), {}).get(match.group(2), ""))
    raise ContainerConfigError(f"unsupported fieldRef fieldPath {path!r}")


class EnvResolver:
    """Resolves references to Secrets and ConfigMaps of one pod's namespace; each object is
    read once per resolver (make one per container start)."""

    def __init__(self, api: KubeApi, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self._cache: dict[tuple[str, str], dict[str, str] | None] = {}

    async def _data(self, kind: str, name: str, optional: bool) -> dict[str, str] | None:
        key = (kind, name)
        if key not in self._cache:
            try:
                obj = await self.api.get(f"/api/v1/namespaces/{self.namespace}/{kind}/{name}")
            except ApiError as e:
                if e.status != 404:
                    raise
                self._cache[key] = None
            else:
                data: dict[str, str] = dict(obj.get("data") or {})
                if kind == "secrets":
                    data = {k: base64.b64decode(v).decode() for k, v in data.items()}
                self._cache[key] = data
        found = self._cache[key]
        if found is None and not optional:
            singular = "secret" if kind == "secrets" else "configmap"
            raise ContainerConfigError(f'{singular} "{name}" not found')
        return found

    async def _key(self, kind: str, ref: dict[str, Any]) -> str | None:
        optional = bool(ref.get("optional"))
        data = await self._data(kind, ref["name"], optional)
        if data is None:
            return None
        if ref["key"] not in data:
            if optional:
                return None
            singular = "secret" if kind == "secrets" else "configmap"
            raise ContainerConfigError(
                f"couldn't find key {ref['key']} in {singular} {self.namespace}/{ref['name']}"
            )
        return data[ref["key"]]

    async def environment(
        self, pod: dict[str, Any], container: dict[str, Any], base: dict[str, str]
    ) -> dict[str, str]:
        env = {k: os.environ[k] for k in INHERITED if k in os.environ}
        env.update(base)
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for kind, field in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
                if field in source:
                    ref = source[field]
                    data = await self._data(kind, ref["name"], bool(ref.get("optional")))
                    for k, v in (data or {}).items():
                        env[prefix + k] = v
        for var in container.get("env") or []:
            value = await self._value(pod, var, env)
            if value is not None:
                env[var["name"]] = value
        return env

    async def _value(
        self, pod: dict[str, Any], var: dict[str, Any], env: dict[str, str]
    ) -> str | None:
        if "valueFrom" not in var:
            return expand(var.get("value", ""), env)
        source = var["valueFrom"]
        if "fieldRef" in source:
            return _field(pod, source["fieldRef"]["fieldPath"])
        if "secretKeyRef" in source:
            return await self._key("secrets", source["secretKeyRef"])
        if "configMapKeyRef" in source:
            return await self._key("configmaps", source["configMapKeyRef"])
        kinds = ", ".join(source)
        raise ContainerConfigError(f"env {var['name']}: unsupported valueFrom ({kinds})")


def argv(container: dict[str, Any], env: dict[str, str]) -> list[str]:
    """command + args with `$(VAR)` expanded; an image entrypoint cannot be guessed here."""
    command = list(container.get("command") or [])
    if not command:
        raise ContainerConfigError(
            f"container {container['name']!r} has no command: the local runner has no image "
            "entrypoint, set spec.containers[].command"
        )
    return [expand(a, env) for a in command + list(container.get("args") or [])]
