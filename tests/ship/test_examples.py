"""The custom-handler example is real: the bundled worker runs its handlers from the package."""

from __future__ import annotations

import os
import subprocess
import sys

import jobqueue
from ship_helpers import REPO

EXAMPLE = REPO / "manifests" / "examples" / "custom-handlers"


def test_the_worker_runs_the_example_handler_package(redis_url: str) -> None:
    queue = jobqueue.Queue("media", redis_url)
    try:
        counted = queue.submit("word-count", {"text": "one two three"})
        thumbs = queue.submit("thumbnail", {"image": "cat.png", "sizes": [64, 128]})
        # What the image's entrypoint runs, with the package on the path instead of installed.
        env = {**os.environ, "PYTHONPATH": str(EXAMPLE), "JOBQUEUE_REDIS_URL": redis_url}
        worker = subprocess.run(
            [sys.executable, "-m", "jobqueue.cli", "worker", "media", "--handlers", "myapp.tasks",
             "--burst", "--metrics-port", "0"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert worker.returncode == 0, worker.stderr
        assert queue.wait(counted, timeout=10).result == 3
        thumbnail = queue.wait(thumbs, timeout=10)
        assert thumbnail.result == {"image": "cat.png", "sizes": [64, 128]}
        assert thumbnail.progress == 100
    finally:
        queue.close()
