"""kopf against the local cluster through the `kube_env` fixture: login, watch, patch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Registers the real operator's handlers in kopf's process-wide default registry, as collecting
# tests/operator does in a full run: the smoke operator must run only its own handlers anyway.
import jobqueue_operator.handlers  # noqa: F401
from kopf.testing import KopfRunner

OPERATOR = """
import kopf

@kopf.on.create("configmaps", labels={"smoke": "yes"})
def seen(body, patch, **_):
    patch.metadata.annotations["smoke/seen"] = body["data"]["word"]
"""


def test_kopf_operator_reacts(
    kube_env: Any, kube_namespace: str, kopf_registry: Any, tmp_path: Path
) -> None:
    operator = tmp_path / "operator.py"
    operator.write_text(OPERATOR)
    args = ["run", "--standalone", "--namespace", kube_namespace, str(operator)]
    with KopfRunner(args, timeout=60, registry=kopf_registry) as runner:
        kube_env.core.create_namespaced_config_map(
            kube_namespace,
            {"metadata": {"name": "cm", "labels": {"smoke": "yes"}}, "data": {"word": "hello"}},
        )

        def annotated() -> str | None:
            cm = kube_env.core.read_namespaced_config_map("cm", kube_namespace)
            value: str | None = (cm.metadata.annotations or {}).get("smoke/seen")
            return value

        assert kube_env.wait_for(annotated, timeout=30, message="kopf annotation") == "hello"
    assert runner.exit_code == 0, runner.output
    assert runner.exception is None
