"""Foreign queues on the dashboard, in headless Chromium against a real kube-apiserver: a
JobQueue reading Flowise's BullMQ queues (spec.source) shows on the Queues page read-only
with the figures its status holds (no job list, no buttons), updates live, and is not
taken for this Redis's queue of the same name. The test writes the status in the
operator's place (the operator's foreign adapters are tested in tests/operator).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import chromium
from web_helpers import Tokens, dashboard_process
from web_kube import GROUP, PLURAL, VERSION, dashboard_kubeconfig, post_status

pytest_plugins = ["web_fixtures", "screenshot_report"]
pytestmark = [pytest.mark.redis, pytest.mark.browser, pytest.mark.slow]


@pytest.mark.long
def test_a_foreign_queue_is_shown_read_only_and_live(
    crd: Any, kube_namespace: str, redis_url: str, tokens: Tokens, tmp_path: Path
) -> None:
    cluster, ns = crd, kube_namespace
    kubeconfig = dashboard_kubeconfig(cluster, ns, tmp_path / "dashboard.kubeconfig")
    cluster.custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        ns,
        PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "JobQueue",
            "metadata": {"name": "flowise"},
            "spec": {
                "redis": {"url": redis_url},
                "source": {"kind": "BullMQ", "queues": ["work", "flowise-upsertion"]},
                "worker": {"image": "flowiseai/flowise-worker:3.0.0"},
            },
        },
    )
    status = {
        "queue": "work,flowise-upsertion",
        "desiredReplicas": 3,
        "replicas": 2,
        "readyReplicas": 1,
        "backlogTotal": 37,
        "oldestWaitSeconds": 4.5,
        "failureRatio": 0.25,
        "scaleTarget": "Deployment/flowise-worker",
        "signals": ["waiting", "inFlight", "delayed", "outcomes"],
    }
    post_status(cluster, ns, status, name="flowise")
    args = ("--kube", "--kube-namespace", ns, "--kubeconfig", str(kubeconfig))
    with (
        dashboard_process(redis_url, tokens, tmp_path / "dashboard.log", *args) as dashboard,
        chromium("foreign") as b,
    ):
        url, page, key = dashboard.url, b.page, f"{ns}/flowise"
        # This Redis's own queue named "work": the BullMQ queue "work" is another queue.
        answer = httpx.post(
            f"{url}/api/v1/queues/work/jobs", json={"name": "x"}, headers=tokens.as_writer
        )
        assert answer.status_code == 201, answer.text
        page.goto(f"{url}/#token={tokens.write}")
        page.wait_for_function("location.hash === '#/'")
        row = page.locator(f"[data-testid=foreign-table] tr[data-jobqueue='{key}']")
        row.wait_for()
        cells = row.locator("td").all_inner_texts()
        assert cells[1:4] == ["BullMQ", "work, flowise-upsertion", "37"], cells
        assert cells[4:7] == ["4.5 s", "25.0 %", "1/2 (→3)"], cells
        assert cells[7] == "waiting, inFlight, delayed, outcomes"
        own = page.locator("[data-testid=queues-table] tr[data-queue=work]")
        own.wait_for()  # drawn with the foreign table, from the same overview
        replicas = own.locator("td").last.inner_text()
        assert replicas == "\u2013", "the foreign JobQueue was taken for this queue's"
        page.evaluate("window.__notReloaded = true")

        post_status(cluster, ns, {**status, "backlogTotal": 12}, name="flowise")
        backlog = f"[data-testid=foreign-table] tr[data-jobqueue='{key}'] td:nth-child(4)"
        shows = "([sel, text]) => document.querySelector(sel)?.innerText.includes(text)"
        page.wait_for_function(shows, arg=[backlog, "12"], timeout=30_000)
        assert page.evaluate("window.__notReloaded") is True, "the page reloaded"
        # read-only: nothing in its row leads into a job list or changes anything
        hrefs = row.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
        assert hrefs == ["#/scaling"]
        assert row.locator("button").count() == 0
        page.wait_for_selector(f"{backlog} svg polyline", state="attached")
        b.shot("01-queues-with-a-foreign-queue")

        detail = httpx.get(f"{url}/api/v1/queues/work", headers=tokens.as_reader).json()
        assert detail["jobqueues"] == []
        page.goto(f"{url}/#/scaling")
        summary = page.locator(f"details[data-key='{key}'] summary")
        summary.wait_for()
        assert "BullMQ (read-only)" in summary.inner_text()
        b.shot("02-scaling-of-a-foreign-queue")
        assert b.offsite == [] and b.errors == []
