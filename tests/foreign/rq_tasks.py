"""RQ job functions for the foreign-queue tests: sleep, then succeed or raise."""

from __future__ import annotations

import time


def sleep(seconds: float = 0.0, fail: bool = False) -> str:
    print(f"start {seconds}", flush=True)
    time.sleep(seconds)
    if fail:
        raise RuntimeError("asked to fail")
    print("done", flush=True)
    return "ok"
