"""Dashboard and alert rules: valid, and built only from metrics the code really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jobqueue.runtime.metrics import WorkerMetrics
from jobqueue_operator import resources
from jobqueue_operator.metrics import OperatorMetrics
from prometheus_client import CollectorRegistry
from ship_helpers import REPO, Render, find

pytest_plugins = ["ship_fixtures"]

DASHBOARD = REPO / "manifests" / "grafana" / "jobqueue-operator.json"
RULES = sorted((REPO / "manifests" / "prometheus").glob("*.yaml"))
# Series Prometheus itself makes for every scrape target.
PROMETHEUS_SERIES = {"up"}
OUR_METRIC = re.compile(r"\b(?:jobq|jobqueue_operator)_[a-z0-9_]+\b")


def exported_series(registry: CollectorRegistry) -> set[str]:
    """Every series name a registry can expose, derived from its metric families' types."""
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    return names


def code_series() -> set[str]:
    return exported_series(WorkerMetrics().registry) | exported_series(OperatorMetrics().registry)


def dashboard_queries() -> Iterator[str]:
    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("expr", "query", "definition") and isinstance(value, str):
                    yield value
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    yield from walk(json.loads(DASHBOARD.read_text()))


def rule_queries() -> Iterator[str]:
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                yield rule["expr"]


def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: apt-get install prometheus (hack/bootstrap.sh does)")
    assert RULES, "no rule files in manifests/prometheus"
    out = subprocess.run(
        [promtool, "check", "rules", *map(str, RULES)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_each_alert_fires_on_its_input_and_stays_quiet_when_healthy() -> None:
    # manifests/prometheus/tests/: promtool's own rule unit tests (synthetic series, expected
    # alerts with their labels and rendered annotations).
    promtool = shutil.which("promtool")
    assert promtool is not None
    unit_tests = sorted((REPO / "manifests" / "prometheus" / "tests").glob("*.yaml"))
    assert unit_tests
    out = subprocess.run(
        [promtool, "test", "rules", *map(str, unit_tests)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    # promtool parses each panel query as a recording rule, Grafana's variables filled in.
    promtool = shutil.which("promtool")
    assert promtool is not None
    filled = {"$__rate_interval": "1m", "$namespace": ".*", "$jobqueue": ".*", "$queue": ".*"}
    exprs = []
    for query in dashboard_queries():
        if query.startswith("label_values("):  # a variable's query, not PromQL
            continue
        for variable, value in filled.items():
            query = query.replace(variable, value)
        assert "$" not in query, query
        exprs.append(query)
    assert len(exprs) >= 20
    records = [{"record": f"dashboard:query{i}", "expr": e} for i, e in enumerate(exprs)]
    rules = {"groups": [{"name": "dashboard", "rules": records}]}
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(rules))
    out = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_rules_cover_the_issue_alerts() -> None:
    alerts = {
        rule["alert"]
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert {
        "JobQueueBacklogGrowing",
        "JobQueueWaitTooLong",
        "JobQueueFailureRatioHigh",
        "JobQueueScalingSaturated",
        "JobQueueOperatorDown",
        "JobQueueOperatorNoLeader",
        "JobQueueRedisUnreachable",
    } <= alerts


@pytest.mark.parametrize("source", ["dashboard", "rules"])
def test_every_queried_metric_is_exported_by_the_code(source: str) -> None:
    queries = list(dashboard_queries() if source == "dashboard" else rule_queries())
    assert queries
    used = {name for q in queries for name in OUR_METRIC.findall(q)}
    assert used, "no jobq_/jobqueue_operator_ metric found in the queries"
    missing = used - code_series()
    assert not missing, f"{source} queries metrics no code exports: {sorted(missing)}"
    # Any other identifier right before a selector or range is a metric too: it must be known.
    others = {
        m
        for q in queries
        for m in re.findall(r"\b([a-z_:][a-z0-9_:]*)\s*\{", q)
        if not OUR_METRIC.fullmatch(m)
    }
    assert others <= PROMETHEUS_SERIES, f"unknown metrics in {source}: {sorted(others)}"


def test_the_exported_check_can_fail() -> None:
    # The check above would catch a misspelt name: it is not in the exported set.
    series = code_series()
    assert "jobq_jobs_total" in series
    assert "jobq_jobs_totl" not in series
    assert "jobqueue_operator_desired_replicas" in series


def test_worker_pod_monitor_selects_the_operators_worker_pods(render: Render) -> None:
    (monitor,) = find(render("metrics.workerPodMonitor.enabled=true"), "PodMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    labels = resources.common_labels("any-queue")
    assert selector.items() <= labels.items()
    # ... and scrapes the port the worker container names.
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"


def test_dashboard_is_grafana_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "jobqueue-operator"
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for needed in ("backlog", "wait", "throughput", "failure", "replicas", "scale events"):
        assert needed in titles, needed
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"namespace", "jobqueue"} <= variables
