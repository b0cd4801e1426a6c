"""The generated CRD and reference match spec.py, and the schema is structural."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from jobqueue.models import QueueSettings
from jobqueue_operator import crdgen, spec
from pydantic import ValidationError


def test_committed_files_are_fresh() -> None:
    stale = [
        str(path.relative_to(crdgen.ROOT))
        for path, content in crdgen.rendered().items()
        if not path.exists() or path.read_text() != content
    ]
    assert not stale, f"stale generated files {stale}: run `make crds`"


def walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = []
    if isinstance(node, dict):
        out.append((path, node))
        for key, sub in node.get("properties", {}).items():
            out += walk(sub, f"{path}.{key}")
        if "properties" in node.get("items", {}):
            out += walk(node["items"], f"{path}[]")
    return out


def test_schema_is_structural() -> None:
    schema = crdgen.openapi_schema()
    for path, node in walk(schema):
        for banned in ("anyOf", "$ref", "oneOf", "allOf", "title", "const"):
            assert banned not in node, f"{path} has {banned}"
        # a node without a type must say what it holds instead (any JSON, or int-or-string)
        typed = "type" in node or node.get("x-kubernetes-int-or-string")
        any_json = node.get("x-kubernetes-preserve-unknown-fields")
        assert typed or any_json, f"{path} has no type"


def test_crd_shape() -> None:
    crd = yaml.safe_load(crdgen.CRD_PATH.read_text().split("---\n", 1)[1])
    version = crd["spec"]["versions"][0]
    assert crd["spec"]["names"]["shortNames"] == ["jq"]
    assert version["subresources"]["scale"]["specReplicasPath"] == ".spec.replicas"
    assert "status" in version["subresources"]
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == [
        "Queue",
        "Replicas",
        "Desired",
        "Backlog",
        "Oldest-Wait",
        "Failure-Ratio",
        "Ready",
        "Age",
    ]
    spec_schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    scaling = spec_schema["properties"]["scaling"]
    assert scaling["default"]["maxReplicas"] == 10
    assert scaling["default"]["failureRate"]["threshold"] == 0.5
    assert scaling["properties"]["maxReplicas"]["minimum"] == 1
    threshold = scaling["properties"]["failureRate"]["properties"]["threshold"]
    assert threshold["minimum"] == 0 and threshold["exclusiveMinimum"] is True
    assert threshold["maximum"] == 1
    rules = [r["rule"] for _, n in walk(spec_schema) for r in n.get("x-kubernetes-validations", [])]
    assert any("self.minReplicas <= self.maxReplicas" in r for r in rules)
    assert any("rediss?([+](sentinel|cluster))?://" in r for r in rules)


def test_reference_documents_every_spec_field() -> None:
    doc = crdgen.DOC_PATH.read_text()
    for path, _ in walk(crdgen.openapi_schema()["properties"]["spec"], "spec"):
        if path.endswith("[]"):
            continue  # a list's items are documented through their fields
        assert f"| `{path}` |" in doc


BAD_SPECS = [
    ({"redis": {}}, "url"),
    ({"redis": {"url": "x"}, "scaling": {"minReplicas": 5, "maxReplicas": 2}}, None),
    ({"redis": {"url": "x"}, "scaling": {"maxReplicas": 0}}, "maxReplicas"),
    ({"redis": {"url": "x"}, "scaling": {"failureRate": {"threshold": 0}}}, "threshold"),
    ({"redis": {"url": "x"}, "worker": {"concurrency": 0}}, "concurrency"),
    ({"redis": {"url": "x"}, "bogus": 1}, "bogus"),
    ({"redis": {"url": "x"}, "worker": {"httpAllow": ["10.0.0.1/8"]}}, "10.0.0.1/8"),
    ({"redis": {"url": "x"}, "worker": {"httpAllow": ["http://x"]}}, "neither a network"),
]


@pytest.mark.parametrize(("raw", "field"), BAD_SPECS)
def test_models_refuse_bad_single_fields(raw: dict[str, Any], field: str | None) -> None:
    if field is None:
        spec.JobQueueSpec.model_validate(raw)  # cross-field rules live in CEL (API server)
        return
    with pytest.raises(ValidationError, match=field):
        spec.JobQueueSpec.model_validate(raw)


def test_defaults() -> None:
    jq = spec.JobQueueSpec.model_validate({"redis": {"url": "redis://r"}})
    assert jq.scaling.mode == spec.ScalingMode.AUTO
    assert jq.backlog_target() == jq.worker.concurrency == 4
    assert jq.scaling.failure_rate.effective_recovery_threshold == 0.25
    assert jq.queue_name("emails") == "emails"


def test_queue_settings_cover_every_queue_setting() -> None:
    """spec.queueSettings names every jobqueue QueueSettings field (durations in seconds),
    and stores only what was given."""
    every = {
        "resultTtlSeconds": 60, "keepCompleted": 1, "keepFailed": 2, "keepCancelled": 3,
        "keepAgeSeconds": 120, "eventsMaxlen": 0, "maxPayloadBytes": 10, "maxResultBytes": 20,
        "maxLeaseLapses": 4, "maxHandbacks": 5,
    }  # fmt: skip
    settings = spec.QueueSettingsSpec.model_validate(every).to_queue_settings()
    assert set(settings.stored_fields()) == set(QueueSettings.model_fields)
    one = spec.QueueSettingsSpec.model_validate({"keepAgeSeconds": 30}).to_queue_settings()
    assert one.stored_fields() == {"keep_age": "30"}
