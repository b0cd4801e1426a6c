"""Helpers shared by the queue tests (imported as a plain module: tests/queue is on sys.path)."""

from fixtures_redis import FakeClock, ProtoFactory

__all__ = ["FakeClock", "ProtoFactory"]
