"""The Dockerfiles (not buildable here: no Docker engine) follow the rules the images promise."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml
from jobqueue_operator import spec
from ship_helpers import REPO

DOCKERFILES = {
    "worker": REPO / "worker" / "Dockerfile",
    "operator": REPO / "operator" / "Dockerfile",
}
SCRIPTS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_dockerfile_rules(image: str) -> None:
    steps = instructions(DOCKERFILES[image].read_text())
    args = dict(a.split("=", 1) for w, a in steps if w == "ARG" and "=" in a)
    base = args["PYTHON_IMAGE"]
    # A pinned slim Debian base: an exact Python patch version, never latest.
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base
    stages = [a for w, a in steps if w == "FROM"]
    assert len(stages) == 2, "multi-stage: a build stage and a final stage"
    final = steps[max(i for i, (w, _) in enumerate(steps) if w == "FROM") :]
    # Nothing is compiled or installed with apt in the final stage; it copies the virtualenv.
    final_runs = " ".join(a for w, a in final if w == "RUN")
    assert not re.search(r"apt-get|gcc|build-essential|pip install", final_runs)
    assert any(w == "COPY" and a.startswith("--from=build") for w, a in final)
    # Non-root, numerically (runAsNonRoot can check it), and OCI labels.
    (user,) = [a for w, a in final if w == "USER"]
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), user
    labels = " ".join(a for w, a in final if w == "LABEL")
    for key in ("title", "version", "revision", "source", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels, key


def test_entrypoints_are_the_console_scripts() -> None:
    worker = dict(instructions(DOCKERFILES["worker"].read_text()))
    operator = dict(instructions(DOCKERFILES["operator"].read_text()))
    assert worker["ENTRYPOINT"] == '["jobq", "worker"]'
    assert operator["ENTRYPOINT"] == '["/opt/jobqueue-operator/bin/jobqueue-operator"]'
    assert {"jobq", "jobqueue-operator"} <= set(SCRIPTS)


def test_the_build_context_keeps_only_sources() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    ignore = [line for line in lines if line.strip() and not line.startswith("#")]
    assert ignore[0] == "*"  # everything excluded first ...
    kept = {line[1:] for line in ignore if line.startswith("!")}
    assert kept == {"pyproject.toml", "README.md", "worker", "operator", "web"}  # ... then these


def test_versions_agree() -> None:
    # The chart's appVersion is the package version, and the operator's default worker image
    # carries the same tag, so an installed chart runs matching operator and worker images.
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((REPO / "charts" / "jobqueue-operator" / "Chart.yaml").read_text())
    assert chart["appVersion"] == version
    assert spec.DEFAULT_WORKER_IMAGE.endswith(f":{version}")
    for dockerfile in DOCKERFILES.values():
        assert f"ARG VERSION={version}" in dockerfile.read_text()
