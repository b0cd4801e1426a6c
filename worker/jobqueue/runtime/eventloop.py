"""Which asyncio event loop a worker process runs on: uvloop when it is installed (it cuts
the loop's own cost per job roughly in half), the standard one otherwise or on request."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable
from typing import Literal, get_args

__all__ = [
    "EVENT_LOOP_CHOICES",
    "EventLoopChoice",
    "UnavailableEventLoop",
    "loop_factory",
    "resolve",
]

EventLoopChoice = Literal["auto", "uvloop", "asyncio"]
EVENT_LOOP_CHOICES: tuple[str, ...] = get_args(EventLoopChoice)


class UnavailableEventLoop(RuntimeError):
    """uvloop was asked for explicitly but cannot be imported."""


def resolve(choice: EventLoopChoice) -> Literal["uvloop", "asyncio"]:
    """The loop ``choice`` stands for here: ``auto`` means uvloop if importable."""
    if choice == "asyncio":
        return "asyncio"
    available = importlib.util.find_spec("uvloop") is not None
    if choice == "uvloop" and not available:
        raise UnavailableEventLoop(
            "JOBQUEUE_EVENT_LOOP=uvloop, but uvloop is not installed "
            "(pip install uvloop, or use auto/asyncio)"
        )
    return "uvloop" if available else "asyncio"


def loop_factory(
    choice: EventLoopChoice,
) -> tuple[Literal["uvloop", "asyncio"], Callable[[], asyncio.AbstractEventLoop]]:
    """The loop ``choice`` resolves to and a factory for ``asyncio.Runner(loop_factory=...)``."""
    name = resolve(choice)
    if name == "uvloop":
        import uvloop

        return name, uvloop.new_event_loop
    return name, asyncio.new_event_loop
