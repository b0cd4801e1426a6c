"""redis-benchmark on the benchmark's own redis-server: the physical limit beside the queues."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from typing import Any
from urllib.parse import urlparse

import redis


def _rps(argv: list[str], timeout: float) -> dict[str, float]:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=True)
    out: dict[str, float] = {}
    for row in csv.reader(io.StringIO(res.stdout)):
        if len(row) >= 2 and row[0] != "test":
            try:
                out[row[0]] = float(row[1])
            except ValueError:
                continue
    return out


def run(url: str, requests: int, timeout: float = 120) -> dict[str, Any]:
    """Requests/s for EVALSHA of a trivial script and LPUSH/RPOP, 50 clients and 1 client,
    without and with 16-deep pipelining."""
    tool = shutil.which("redis-benchmark")
    if tool is None:
        return {"error": "redis-benchmark not installed (Debian redis-tools)"}
    parsed = urlparse(url)
    base = [tool, "-h", parsed.hostname or "127.0.0.1", "-p", str(parsed.port or 6379), "--csv"]
    sha = redis.Redis.from_url(url).script_load("return 1")
    results: dict[str, Any] = {}
    try:
        for label, clients, pipeline, n in [
            ("c50", 50, 1, requests),
            ("c1", 1, 1, requests // 5),
            ("c50_P16", 50, 16, requests * 4),
        ]:
            opts = ["-c", str(clients), "-P", str(pipeline), "-n", str(n)]
            for name, rps in _rps([*base, *opts, "-t", "lpush,rpop"], timeout).items():
                results[f"{name}_{label}"] = rps
            evalsha = _rps([*base, *opts, "evalsha", sha, "0"], timeout)
            results[f"EVALSHA_{label}"] = next(iter(evalsha.values()), 0.0)
    except (subprocess.SubprocessError, OSError) as exc:
        results["error"] = f"redis-benchmark failed: {exc}"
    return results
