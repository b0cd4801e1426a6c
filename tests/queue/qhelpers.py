"""Helpers shared by the queue tests (imported as a plain module: tests/queue is on sys.path)."""

from __future__ import annotations

from collections.abc import Callable

from jobqueue.protocol import QueueProtocol

ProtoFactory = Callable[..., QueueProtocol]


class FakeClock:
    """A clock the test moves by hand; passed to scripts as ``now``."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
