"""Names of the resource and what every model of it shares: camelCase on the wire, CEL rules
beside the fields they check, full defaults for nested objects."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

GROUP = "jobqueue.dev"
VERSION = "v1alpha1"
KIND = "JobQueue"
PLURAL = "jobqueues"
SINGULAR = "jobqueue"
SHORT_NAMES = ["jq"]

DEFAULT_WORKER_IMAGE = "ghcr.io/jobqueue-operator/jobqueue-worker:0.1.0"
DEFAULT_WORKER_COMMAND = ["jobq", "worker"]


def cel(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path is not None:
        entry["fieldPath"] = field_path
    return entry


def defaults_of(model: type[BaseModel]) -> JsonDict:
    """A nested object's full default: the API server checks CEL rules on defaults as they
    are, so ``{}`` would not do."""
    dumped: JsonDict = model().model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


class CamelModel(BaseModel):
    """Base: camelCase on the wire, snake_case in Python, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
    )
