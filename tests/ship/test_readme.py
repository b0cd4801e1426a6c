"""The README documents only what exists: links, make targets, jobq commands, chart values."""

from __future__ import annotations

import re

import click
import pytest
import yaml
from jobqueue.cli import cli
from ship_helpers import CHART, REPO

README = (REPO / "README.md").read_text()


def test_the_two_commands_are_near_the_top() -> None:
    top = "\n".join(README.splitlines()[:15])
    assert "make demo" in top
    assert "make test" in top


def test_relative_links_point_at_files() -> None:
    links = re.findall(r"\]\(([^)#\s]+)\)", README)
    local = [link for link in links if not link.startswith(("http://", "https://"))]
    assert local
    missing = [link for link in local if not (REPO / link).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_make_targets_exist() -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-zA-Z_-]+):", makefile, re.MULTILINE))
    mentioned = set(re.findall(r"\bmake ([a-z][a-z-]*)", README))
    assert {"demo", "test"} <= mentioned
    assert mentioned <= targets, f"README mentions unknown make targets: {mentioned - targets}"


def test_jobq_commands_exist() -> None:
    ctx = click.Context(cli, info_name="jobq")
    commands = set(cli.list_commands(ctx))
    mentioned = set(re.findall(r"^jobq ([a-z]+)", README, re.MULTILINE))
    mentioned |= set(re.findall(r"`jobq ([a-z]+)", README))
    assert len(mentioned) >= 8
    assert mentioned <= commands, f"README mentions unknown jobq commands: {mentioned - commands}"


def chart_values_table() -> list[str]:
    """The first column of the README's table of chart values."""
    table = README.split("| Value | Default |", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^\| `([a-zA-Z.]+)` \|", table, re.MULTILINE)


@pytest.mark.parametrize("table_row", chart_values_table())
def test_chart_values_in_the_readme_exist(table_row: str) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    node = values
    for part in table_row.split("."):
        assert isinstance(node, dict) and part in node, f"no chart value {table_row}"
        node = node[part]


def test_set_flags_name_chart_values() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    keys = re.findall(r"--set ([a-zA-Z.]+)=", README)
    assert keys
    for key in keys:
        node = values
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"README sets unknown value {key}"
            node = node[part]


def test_jobqueue_yaml_in_the_docs_matches_the_spec() -> None:
    # Every JobQueue shown in the README and the examples parses with the operator's own model.
    from jobqueue_operator import spec

    blocks = re.findall(r"```(?:yaml|bash)\n(.*?)```", README, re.DOTALL)
    heredoc = "<<'EOF'\n"
    texts = [b.split(heredoc, 1)[1].split("\nEOF", 1)[0] if heredoc in b else b for b in blocks]
    texts += [p.read_text() for p in (REPO / "manifests" / "examples").rglob("*.yaml")]
    found = 0
    for text in texts:
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError:
            continue  # a shell block without an embedded manifest
        for doc in docs:
            if isinstance(doc, dict) and doc.get("kind") == "JobQueue":
                spec.JobQueueSpec.model_validate(doc["spec"])
                found += 1
    assert found >= 6
