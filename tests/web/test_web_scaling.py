"""The dashboard's live view of scaling, on a real kube-apiserver: ``jobq dashboard --kube``
runs as the chart's ServiceAccount with the chart's read-only RBAC, and shows a JobQueue's
replicas and scale events change without a reload when its status changes and a
``ScaledUp`` Event is posted, as the operator writes them. (Here the test writes them in the
operator's place; the operator's own status writes are tested in tests/operator.)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from browser import chromium
from web_helpers import Tokens, dashboard_process
from web_kube import (
    GROUP,
    PLURAL,
    VERSION,
    can_i,
    dashboard_kubeconfig,
    post_scale_event,
    post_status,
)

pytest_plugins = ["web_fixtures", "screenshot_report"]
pytestmark = [pytest.mark.redis, pytest.mark.browser, pytest.mark.slow]


@pytest.mark.long
def test_the_live_view_shows_a_scale_up(
    crd: Any, kube_namespace: str, redis_url: str, tokens: Tokens, tmp_path: Path
) -> None:
    cluster, ns = crd, kube_namespace
    kubeconfig = dashboard_kubeconfig(cluster, ns, tmp_path / "dashboard.kubeconfig")
    assert can_i(cluster, ns, "list", "jobqueues") and can_i(cluster, ns, "list", "events")
    for verb, resource in (
        ("patch", "jobqueues"),
        ("create", "jobqueues"),
        ("create", "events"),
        ("get", "secrets"),
        ("list", "pods"),
    ):
        assert not can_i(cluster, ns, verb, resource), f"the dashboard may {verb} {resource}"

    created = cluster.custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        ns,
        PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "JobQueue",
            "metadata": {"name": "emails"},
            "spec": {"queue": "work", "redis": {"url": redis_url}},
        },
    )
    post_status(
        cluster,
        ns,
        {
            "queue": "work",
            "desiredReplicas": 0,
            "replicas": 0,
            "readyReplicas": 0,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Idle",
                    "message": "no work",
                    "lastTransitionTime": "2026-12-01T00:00:00Z",
                }
            ],
        },
    )
    args = ("--kube", "--kube-namespace", ns, "--kubeconfig", str(kubeconfig))
    with (
        dashboard_process(redis_url, tokens, tmp_path / "dashboard.log", *args) as dashboard,
        chromium("scaling") as b,
    ):
        page = b.page
        key = f"{ns}/emails"
        page.goto(f"{dashboard.url}/#token={tokens.read}")
        page.wait_for_function("location.hash === '#/'")
        page.goto(f"{dashboard.url}/#/scaling")
        replicas = f"[data-testid='replicas-{key}']"  # redrawn on every live update
        shows = "([sel, text]) => document.querySelector(sel)?.textContent === text"
        page.wait_for_function(shows, arg=[replicas, "desired 0 · current 0 · ready 0"])
        page.evaluate("window.__notReloaded = true")
        b.shot("01-idle")

        post_status(
            cluster,
            ns,
            {
                "desiredReplicas": 4,
                "replicas": 4,
                "readyReplicas": 2,
                "lastScaleTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "lastScaleReason": "Backlog",
            },
        )
        post_scale_event(cluster, ns, created["metadata"]["uid"], "0 -> 4 (Backlog): 40 jobs wait")
        page.wait_for_function(
            shows, arg=[replicas, "desired 4 · current 4 · ready 2"], timeout=30_000
        )
        events = page.locator(f"[data-testid='scale-events-{key}'] li[data-reason=ScaledUp]")
        events.first.wait_for(timeout=30_000)
        assert "0 -> 4 (Backlog)" in events.first.inner_text()
        chart = page.locator(f"[data-testid='replicas-chart-{key}'] svg path.desired")
        chart.wait_for(state="attached")
        assert page.evaluate("window.__notReloaded") is True, "the page reloaded"
        page.wait_for_selector(f"[data-testid='replicas-chart-{key}'] line.up", state="attached")
        b.shot("02-scaled-up")
        assert b.offsite == [] and b.errors == []
