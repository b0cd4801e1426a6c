"""The chart's pre-delete hook script (files/cleanup.py) on the real API server, with no
operator running: it removes the operator's finalizer, and only that one."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from jobqueue_operator import spec
from operator_helpers import REPO, JobQueues, jobqueue_manifest

pytest_plugins = ["operator_fixtures"]

SCRIPT = REPO / "charts" / "jobqueue-operator" / "files" / "cleanup.py"
OURS, THEIRS = "jobqueue.dev/finalizer", "backup.example.com/snapshot"


def test_cleanup_removes_only_the_operators_finalizer(jobqueues: JobQueues) -> None:
    manifest = jobqueue_manifest("stuck", "redis://127.0.0.1:1/0")
    manifest["metadata"]["finalizers"] = [THEIRS, OURS]
    jobqueues.create(manifest)
    out = subprocess.run(
        [sys.executable, str(SCRIPT)],
        env={**jobqueues.cluster.env, "WATCH_NAMESPACES": jobqueues.namespace,
             "CLEANUP_TIMEOUT": "1"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    left: dict[str, Any] = jobqueues.get("stuck")
    # deleted, and held only by the other controller's finalizer, for it to do its cleanup
    assert left["metadata"]["deletionTimestamp"]
    assert THEIRS in left["metadata"]["finalizers"] and OURS not in left["metadata"]["finalizers"]
    jobqueues.patch("stuck", {"metadata": {"finalizers": None}})  # the other controller's turn
    custom = jobqueues.cluster.custom
    jobqueues.wait(
        lambda: not custom.list_namespaced_custom_object(
            spec.GROUP, spec.VERSION, jobqueues.namespace, spec.PLURAL)["items"],
        30, "the JobQueue gone",
    )  # fmt: skip
