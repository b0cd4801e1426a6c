"""How fast the dashboard loads with 100,000 jobs in a queue (the issue's target: under 1 s).

    python -m bench.dashboard [--jobs 100000] [--runs 5]

Fills a queue on a throwaway redis-server (``submit_many``; 98 % stay queued, 2 % are
cancelled so a finished state has records too), serves it with ``jobq dashboard`` (a real
process), and loads the page in Debian's headless Chromium through Playwright, a fresh
browser context per run (no cache). Page times run from navigation start (or from the
route change) to the moment the screen is drawn with its data (the page's own
``jobq-loaded`` mark): the queues overview, the queue's job list (newest page of 100,000
queued), a job's detail, a search, and the job list opened directly, after one untimed load
(a browser already running, a server that has served before). It also times the API
calls behind them with httpx, the deepest page included. Writes bench/out/dashboard.json
and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.redisserver import redis_server

BENCH = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("JOBQ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "bench-" + "0" * 26
QUEUE = "bench"


def fill(redis_url: str, jobs: int) -> float:
    """Submit ``jobs`` jobs, then cancel 2 % of them; returns the seconds it took."""
    import jobqueue

    started = time.perf_counter()
    with jobqueue.Queue(QUEUE, redis_url) as queue:
        batch = 10_000
        for start in range(0, jobs, batch):
            count = min(batch, jobs - start)
            queue.submit_many(
                [
                    {
                        "name": "send.email",
                        "payload": {
                            "to": f"user{start + i}@example.com",
                            "template": "welcome",
                            "n": start + i,
                        },
                    }
                    for i in range(count)
                ]
            )
        for job in queue.list("queued", limit=max(1, jobs // 50)):
            queue.cancel(job.id)  # a finished state with a page of its own
    return time.perf_counter() - started


def dashboard(redis_url: str, tokens: Path) -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable,
        "-m",
        "jobqueue.cli",
        "--redis",
        redis_url,
        "dashboard",
        "--port",
        "0",
        "--tokens",
        str(tokens),
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"dashboard: (http://\S+?)/", line)
    if match is None:
        process.kill()
        raise RuntimeError(f"jobq dashboard printed {line!r}")
    threading.Thread(target=lambda: [None for _ in process.stdout or ()], daemon=True).start()
    return process, match.group(1)


def page_loads(url: str, runs: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {
        "overview": [],
        "queue_list": [],
        "job_detail": [],
        "search": [],
        "queue_list_direct": [],
    }
    measure = """() => {
        const [a] = performance.getEntriesByName('jobq-loaded').slice(-1);
        const [r] = performance.getEntriesByName('jobq-route').slice(-1);
        return [a.startTime, a.startTime - r.startTime];
    }"""

    def wait_view(page: Any, view: str) -> None:
        page.wait_for_selector(f"body[data-loaded='{view}']", timeout=30_000)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # One untimed load first: a user's browser is already running and the server has
            # served before (the first page of a new Chromium process pays its start-up).
            warm = browser.new_context()
            warm_page = warm.new_page()
            warm_page.goto(f"{url}/#token={TOKEN}")
            wait_view(warm_page, "queues")
            warm.close()
            for _ in range(runs):
                # Fresh context: nothing cached. From navigation start to the drawn overview.
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                page.goto(f"{url}/#token={TOKEN}")
                wait_view(page, "queues")
                page.wait_for_selector(f"tr[data-queue='{QUEUE}']")
                times["overview"].append(page.evaluate(measure)[0])
                page.evaluate(f"location.hash = '#/queue/{QUEUE}?state=queued'")
                wait_view(page, "queue")
                times["queue_list"].append(page.evaluate(measure)[1])
                first = page.locator("[data-testid=jobs-table] tr[data-job] a").first
                first.click()
                wait_view(page, "job")
                times["job_detail"].append(page.evaluate(measure)[1])
                page.evaluate(f"location.hash = '#/queue/{QUEUE}?state=queued&search=user99999'")
                wait_view(page, "queue")
                times["search"].append(page.evaluate(measure)[1])
                context.close()
                # The queue's page opened directly (cold: navigation start to its job list).
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                page.goto(f"{url}/#token={TOKEN}")
                wait_view(page, "queues")
                page.goto(f"{url}/#/queue/{QUEUE}?state=queued")
                page.reload()
                wait_view(page, "queue")
                times["queue_list_direct"].append(page.evaluate(measure)[0])
                context.close()
        finally:
            browser.close()
    return times


def api_latency(url: str, jobs: int, runs: int) -> dict[str, list[float]]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    paths = {
        "GET /overview": "/api/v1/overview",
        "GET /queues": "/api/v1/queues",
        "GET /jobs?state=queued (newest 50)": f"/api/v1/queues/{QUEUE}/jobs?state=queued&limit=50",
        "GET /jobs?state=queued (deepest page)": f"/api/v1/queues/{QUEUE}/jobs?state=queued"
        f"&limit=50&offset={max(0, jobs - jobs // 50 - 50)}",
        "GET /jobs (all states, newest 50)": f"/api/v1/queues/{QUEUE}/jobs?limit=50",
        "GET /jobs?search= (window 1000)": f"/api/v1/queues/{QUEUE}/jobs?search=user5",
    }
    out: dict[str, list[float]] = {name: [] for name in paths}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        for _ in range(runs * 4):
            for name, path in paths.items():
                started = time.perf_counter()
                http.get(path).raise_for_status()
                out[name].append((time.perf_counter() - started) * 1000)
    return out


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "median_ms": round(statistics.median(values), 1),
        "max_ms": round(max(values), 1),
        "runs": len(values),
        "all_ms": [round(v, 1) for v in values],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp, redis_server() as redis_url:
        tokens = Path(tmp) / "tokens"
        tokens.mkdir()
        (tokens / "write").write_text(TOKEN)
        fill_seconds = fill(redis_url, args.jobs)
        process, url = dashboard(redis_url, tokens)
        load_before = os.getloadavg()[0]
        try:
            time.sleep(2.5)  # the overview's first samples
            pages = page_loads(url, args.runs)
            api = api_latency(url, args.jobs, args.runs)
        finally:
            process.terminate()
            process.wait(15)
    result = {
        "jobs": args.jobs,
        "fill_seconds": round(fill_seconds, 1),
        "page_load": {name: summary(v) for name, v in pages.items()},
        "api": {name: summary(v) for name, v in api.items()},
        "cpu": os.cpu_count(),
        # The machine's 1-minute load average before and after (others' work skews the times).
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "date": time.strftime("%Y-%m-%d"),
    }
    out = BENCH / "out"
    out.mkdir(exist_ok=True)
    (out / "dashboard.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"dashboard with {args.jobs:,} jobs in one queue (filled in {fill_seconds:.1f} s; "
        f"load average {result['load_average'][0]} -> {result['load_average'][1]} "
        f"on {result['cpu']} CPUs)"
    )
    print("| page (Chromium, no cache) | median ms | max ms |\n|---|---|---|")
    for name, s in result["page_load"].items():
        print(f"| {name} | {s['median_ms']} | {s['max_ms']} |")
    print("| API call | median ms | max ms |\n|---|---|---|")
    for name, s in result["api"].items():
        print(f"| {name} | {s['median_ms']} | {s['max_ms']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
