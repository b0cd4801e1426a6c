"""Generate the JobQueue CRD, the field reference and RBAC.

Run ``python -m jobqueue_operator.crdgen`` (``make crds``); ``--check`` exits 1 when the
committed files differ from what the models produce.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from jobqueue_operator import config, rbac, spec

ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "crds" / "jobqueue.dev_jobqueues.yaml"
DOC_PATH = ROOT / "docs" / "reference" / "jobqueue.md"
RBAC_PATH = ROOT / "operator" / "rbac.yaml"

_DROPPED_KEYS = {"title", "additionalProperties"}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline $refs and turn JSON Schema 2020-12 into Kubernetes' structural dialect."""
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    if "anyOf" in node:
        return _resolve(_collapse_any_of(node), defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS or key == "$defs":
            continue
        if key == "default" and value is None:  # a structural schema has no null default
            continue
        if key == "properties":
            out[key] = {name: _resolve(sub, defs) for name, sub in value.items()}
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
        elif key == "x-kubernetes-validations":
            out[key] = value
        elif key == "description":
            out[key] = " ".join(str(value).split())
        else:
            out[key] = _resolve(value, defs)
    if node.get("type") == "object" and "properties" not in node:
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            out["additionalProperties"] = _resolve(extra, defs)
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True
    elif node.get("type") == "object" and node.get("additionalProperties") is True:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("type") == "number" and isinstance(out.get("default"), int):
        out["default"] = float(out["default"])
    return out


def _collapse_any_of(node: dict[str, Any]) -> dict[str, Any]:
    """Optional[X] becomes X; int | str becomes int-or-string."""
    options = [o for o in node["anyOf"] if o.get("type") != "null"]
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    if rest.get("default", 0) is None:
        del rest["default"]
    types = sorted(o.get("type", "") for o in options)
    if types == ["integer", "string"]:
        return {**rest, "x-kubernetes-int-or-string": True}
    if len(options) != 1:
        raise ValueError(f"cannot express anyOf {node['anyOf']!r} in a structural schema")
    return {**options[0], **rest}


def _model_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    resolved: dict[str, Any] = _resolve(raw, defs)
    return resolved


def openapi_schema() -> dict[str, Any]:
    """The JobQueue openAPIV3Schema."""
    return {
        "type": "object",
        "description": "A Redis job queue whose workers the operator runs and autoscales.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": _model_schema(spec.JobQueueSpec),
            "status": _model_schema(spec.JobQueueStatus),
        },
    }


def jobqueue_crd() -> dict[str, Any]:
    """The JobQueue CustomResourceDefinition."""
    columns = [
        ("Queue", "string", ".status.queue", "The Redis queue served"),
        ("Replicas", "integer", ".status.replicas", "Worker pods"),
        ("Desired", "integer", ".status.desiredReplicas", "Replicas decided on"),
        ("Backlog", "integer", ".status.backlogTotal", "queued + active + due jobs"),
        ("Oldest-Wait", "number", ".status.oldestWaitSeconds", "Oldest queued job's wait (s)"),
        ("Failure-Ratio", "number", ".status.failureRatio", "Failed share of attempts"),
        ("Ready", "string", '.status.conditions[?(@.type=="Ready")].status', "Ready"),
        ("Age", "date", ".metadata.creationTimestamp", ""),
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{spec.PLURAL}.{spec.GROUP}"},
        "spec": {
            "group": spec.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": spec.KIND,
                "plural": spec.PLURAL,
                "singular": spec.SINGULAR,
                "shortNames": spec.SHORT_NAMES,
                "categories": ["all", "jobqueue"],
            },
            "versions": [
                {
                    "name": spec.VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": [
                        {"name": n, "type": t, "jsonPath": p, **({"description": d} if d else {})}
                        for n, t, p, d in columns
                    ],
                }
            ],
        },
    }


def _dump(docs: list[dict[str, Any]]) -> str:
    header = "# Generated by `python -m jobqueue_operator.crdgen`; do not edit.\n"
    body = "---\n".join(yaml.safe_dump(d, sort_keys=False, width=100) for d in docs)
    return header + "---\n" + body


def _type_name(node: dict[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int or string"
    kind = str(node.get("type", "object"))
    if kind == "array":
        return f"list of {_type_name(node.get('items', {}))}"
    if "enum" in node:
        return " \\| ".join(str(v) for v in node["enum"])
    if kind == "object" and "additionalProperties" in node:
        return f"map of {_type_name(node['additionalProperties'])}"
    return kind


def _bounds(node: dict[str, Any]) -> str:
    parts = []
    for key, sign in (("minimum", ">="), ("maximum", "<=")):
        if key in node:
            exclusive = node.get("exclusiveM" + key[1:])
            parts.append(f"{sign.replace('=', '') if exclusive else sign} {node[key]}")
    for key, label in (("minLength", "length >="), ("maxLength", "length <=")):
        if key in node:
            parts.append(f"{label} {node[key]}")
    for key, label in (("minItems", "items >="), ("maxItems", "items <=")):
        if key in node:
            parts.append(f"{label} {node[key]}")
    if "pattern" in node:
        parts.append(f"matches `{node['pattern']}`")
    return ", ".join(parts)


def _rows(node: dict[str, Any], path: str, required: bool, rows: list[str]) -> None:
    default = node.get("default")
    default_text = "" if default is None else f"`{yaml.safe_dump(default).strip()}`"
    if isinstance(default, dict):
        default_text = "the defaults of its fields"
    description = " ".join(str(node.get("description", "")).split()).replace("|", "\\|")
    for rule in node.get("x-kubernetes-validations", []):
        description += f" Rule: {rule['message']}."
    rows.append(
        f"| `{path}` | {_type_name(node)} | {'yes' if required else ''} | {default_text} "
        f"| {_bounds(node)} | {description} |"
    )
    props = node.get("properties", {})
    if node.get("type") == "array" and "properties" in node.get("items", {}):
        props, path, node = node["items"]["properties"], path + "[]", node["items"]
    for name, sub in props.items():
        _rows(sub, f"{path}.{name}", name in node.get("required", []), rows)


def _config_docs() -> list[tuple[dataclasses.Field[Any], str]]:
    """Config fields with their attribute docstrings (the line after each field)."""
    source = inspect.getsource(config.Config).splitlines()
    docs = []
    for f in dataclasses.fields(config.Config):
        line = next(i for i, text in enumerate(source) if text.strip().startswith(f"{f.name}:"))
        docs.append((f, source[line + 1].strip().strip('"')))
    return docs


def reference_markdown() -> str:
    """Every field of the JobQueue resource: type, default, bounds and description."""
    schema = openapi_schema()
    rows: list[str] = []
    for section in ("spec", "status"):
        _rows(schema["properties"][section], section, section == "spec", rows)
    table_head = "| Field | Type | Required | Default | Bounds | Description |\n" + "|---" * 6 + "|"
    settings = [
        f"| `{f.name}` | `{f.default!r}` | {' '.join(str(doc).split())} |"
        for f, doc in _config_docs()
    ]
    spec_rows = [r for r in rows if r.startswith("| `spec")]
    status_rows = [r for r in rows if r.startswith("| `status")]
    return "\n".join(
        [
            "<!-- Generated by `python -m jobqueue_operator.crdgen` from spec.py; do not edit. -->",
            f"# JobQueue ({spec.GROUP}/{spec.VERSION})",
            "",
            f"Namespaced; plural `{spec.PLURAL}`, short name `{spec.SHORT_NAMES[0]}`.",
            "Subresources: status, and scale (`spec.replicas` / `status.replicas` /",
            "`status.selector`).",
            "",
            "## Who owns the replica count",
            "",
            "- `scaling.mode: Auto` (default): the operator. `spec.replicas` is refused by the",
            "  API server, so `kubectl scale jq/NAME` fails loudly instead of fighting the",
            "  autoscaler.",
            "- `Manual`: `spec.replicas` (and so `kubectl scale`) sets the count; unset keeps",
            "  the current count.",
            "- `Paused`: the current count is left as it is; status keeps being updated.",
            "",
            "## Spec",
            "",
            table_head,
            *spec_rows,
            "",
            "## Status",
            "",
            table_head,
            *status_rows,
            "",
            "## Operator settings (environment of the `jobqueue-operator` process)",
            "",
            "| Setting | Default | Description |",
            "|---|---|---|",
            *settings,
            "",
        ]
    )


def rendered() -> dict[Path, str]:
    """Every generated file and its content."""
    return {
        CRD_PATH: _dump([jobqueue_crd()]),
        DOC_PATH: reference_markdown(),
        RBAC_PATH: _dump(rbac.manifests()),
    }


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, verify) the generated files."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if files are stale")
    args = parser.parse_args(argv)
    stale = []
    for path, content in rendered().items():
        if args.check:
            if not path.exists() or path.read_text() != content:
                stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
        print(f"stale: {names}; run `make crds`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
