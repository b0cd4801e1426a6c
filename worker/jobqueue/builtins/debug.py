"""``debug.*`` handlers: echo a payload, sleep with progress and cancellation, fail on purpose."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobqueue.registry import task
from jobqueue.runtime.context import JobContext
from jobqueue.runtime.failures import JobCancelled, PermanentJobError
from jobqueue.runtime.payloads import parse_payload


@task("debug.echo")
async def echo(ctx: JobContext, payload: Any) -> Any:
    """Return the payload unchanged (also the no-op job of the benchmarks)."""
    return payload


class SleepPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(ge=0, le=86_400)
    steps: int = Field(default=10, ge=1, le=1000)


@task("debug.sleep")
async def sleep(ctx: JobContext, payload: Any) -> dict[str, float]:
    """Sleep ``seconds``, reporting progress ``steps`` times; stops early when cancelled."""
    args = parse_payload(SleepPayload, payload, "debug.sleep")
    step = args.seconds / args.steps
    for done in range(1, args.steps + 1):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ctx.wait_cancelled(), timeout=step)
        if ctx.cancelled:
            raise JobCancelled(f"cancelled after {(done - 1) * step:.3f}s of {args.seconds}s")
        await ctx.progress(100.0 * done / args.steps, f"slept {done * step:.3f}s")
    return {"slept": args.seconds}


class FailPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = "debug.fail was asked to fail"
    # Fail only the first N attempts, then succeed: exercises retries and backoff.
    fail_attempts: int | None = Field(default=None, ge=1)
    # Skip the remaining attempts and dead-letter at once.
    permanent: bool = False


class DebugFailure(RuntimeError):
    """The deliberate failure raised by debug.fail."""


@task("debug.fail")
async def fail(ctx: JobContext, payload: Any) -> dict[str, int]:
    """Raise with the payload's message; see FailPayload for the options."""
    args = parse_payload(FailPayload, payload if payload is not None else {}, "debug.fail")
    if args.fail_attempts is not None and ctx.attempt > args.fail_attempts:
        return {"succeeded_on_attempt": ctx.attempt}
    if args.permanent:
        raise PermanentJobError(args.message)
    raise DebugFailure(args.message)
