"""Job commands: submit, status, wait, list, cancel, retry, cleanup."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from jobqueue.cli.app import EXIT_FAILURE, EXIT_TIMEOUT, CliState, cli, fail
from jobqueue.cli.parsing import DURATION, parse_payload_json
from jobqueue.cli.render import console, echo_json, job_table, jobs_table
from jobqueue.client import AsyncQueue, CancelResult
from jobqueue.models import FINISHED_STATES, JobState
from jobqueue.protocol.keys import validate_queue_name

__all__ = ["QUEUE", "run_on_queue"]

T = TypeVar("T")

STATE_NAMES = [s.value for s in JobState]
FINISHED_NAMES = sorted(s.value for s in FINISHED_STATES)


def _check_queue(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return validate_queue_name(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


QUEUE = click.argument("queue", callback=_check_queue)


def run_on_queue(state: CliState, queue: str, action: Callable[[AsyncQueue], Awaitable[T]]) -> T:
    """Open the queue's client, run ``action`` on it, close it."""

    async def go() -> T:
        # Built from the URL (not given a client): its options (wait_replicas) apply too.
        async with AsyncQueue(queue, state.redis_url, password=state.password) as aq:
            return await action(aq)

    return asyncio.run(go())


@cli.command()
@QUEUE
@click.argument("name")
@click.argument("payload_json", required=False, metavar="[PAYLOAD_JSON]")
@click.option("--priority", type=int, default=5, show_default=True, help="0 (first) to 9.")
@click.option("--delay", type=DURATION, default=0.0, help="Run no sooner than this (30s, 5m).")
@click.option("--attempts", type=int, default=3, show_default=True, help="Total tries.")
@click.option("--backoff", default=None, help="fixed:S or exponential:S[,cap=S][,jitter=F].")
@click.option("--timeout", type=DURATION, default=None, help="Per-attempt time limit.")
@click.option("--dedup-key", default=None, help="Return the unfinished job holding this key.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole job record.")
@click.pass_obj
def submit(
    state: CliState, queue: str, name: str, payload_json: str | None, priority: int,
    delay: float, attempts: int, backoff: str | None, timeout: float | None,
    dedup_key: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Submit a job; prints its id (PAYLOAD_JSON "-" reads the payload from stdin)."""
    if payload_json == "-":
        payload_json = sys.stdin.read()
    payload = parse_payload_json(payload_json)

    async def action(q: AsyncQueue) -> Any:
        job_id = await q.submit(
            name, payload, priority=priority, delay=delay, attempts=attempts,
            backoff=backoff, timeout=timeout, dedup_key=dedup_key,
        )  # fmt: skip
        return (await q.get(job_id)).to_json_dict() if as_json else job_id

    result = run_on_queue(state, queue, action)
    if as_json:
        echo_json(result)
    else:
        click.echo(result)


@cli.command()
@QUEUE
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
@click.pass_obj
def status(state: CliState, queue: str, job_id: str, as_json: bool) -> None:
    """Show a job."""
    job = run_on_queue(state, queue, lambda q: q.get(job_id))
    if as_json:
        echo_json(job.to_json_dict())
    else:
        console().print(job_table(job))


@cli.command()
@QUEUE
@click.argument("job_id")
@click.option("--timeout", type=DURATION, default=None, help="Give up after this long (exit 3).")
@click.pass_obj
def wait(state: CliState, queue: str, job_id: str, timeout: float | None) -> None:
    """Wait for a job to finish; print its result.

    Exit 0 completed, 1 failed or cancelled, 3 timed out.
    """

    async def action(q: AsyncQueue) -> Any:
        try:
            return await q.wait(job_id, timeout)
        except TimeoutError:
            return (await q.get(job_id)).state

    outcome = run_on_queue(state, queue, action)
    if isinstance(outcome, JobState):
        fail(f"timed out after {timeout:g}s waiting for job {job_id} (still {outcome.value})",
             EXIT_TIMEOUT)  # fmt: skip
        return
    if outcome.state is JobState.COMPLETED:
        click.echo(json.dumps(outcome.result, default=str))
        return
    detail = f": {outcome.error}" if outcome.error else ""
    fail(f"job {job_id} {outcome.state.value}{detail}", EXIT_FAILURE)


@cli.command(name="list")
@QUEUE
@click.option("--state", "state_name", type=click.Choice(STATE_NAMES, case_sensitive=False),
              default=None, help="Only jobs in this state.")  # fmt: skip
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the records as a JSON list.")
@click.pass_obj
def list_jobs(
    state: CliState, queue: str, state_name: str | None, limit: int, as_json: bool
) -> None:
    """List jobs, newest first."""
    jobs = run_on_queue(state, queue, lambda q: q.list(state_name, limit=limit))
    if as_json:
        echo_json([job.to_json_dict() for job in jobs])
    else:
        console().print(jobs_table(jobs))


@cli.command()
@QUEUE
@click.argument("job_id")
@click.pass_obj
def cancel(state: CliState, queue: str, job_id: str) -> None:
    """Cancel a queued or delayed job, or ask an active one to stop."""
    result = run_on_queue(state, queue, lambda q: q.cancel(job_id))
    if result is CancelResult.CANCELLED:
        click.echo(f"cancelled {job_id}")
    elif result is CancelResult.REQUESTED:
        click.echo(f"cancel requested for {job_id} (active: its handler is asked to stop)")
    else:
        fail(f"job {job_id} is already finished; nothing to cancel", EXIT_FAILURE)


@cli.command()
@QUEUE
@click.argument("job_id", required=False)
@click.option("--all", "retry_all", is_flag=True, help="Retry every job in the dead letter.")
@click.pass_obj
def retry(state: CliState, queue: str, job_id: str | None, retry_all: bool) -> None:
    """Run a failed (or cancelled) job again: JOB_ID or --all failed jobs."""
    if (job_id is None) == (not retry_all):
        raise click.UsageError("give either JOB_ID or --all (not both)")
    if retry_all:
        result = run_on_queue(state, queue, lambda q: q.retry_all())
        click.echo(f"retrying {result.retried} job(s)")
        if result.skipped:
            click.echo(
                f"left {result.skipped} job(s) in the dead letter: their dedup key is held by "
                "an unfinished job, or their record is malformed (jobq list --state failed)"
            )
        return
    assert job_id is not None
    run_on_queue(state, queue, lambda q: q.retry(job_id))
    click.echo(f"retrying {job_id}")


@cli.command()
@QUEUE
@click.option("--older-than", type=DURATION, required=True, help="Age since finishing (7d).")
@click.option("--state", "state_name", type=click.Choice(FINISHED_NAMES, case_sensitive=False),
              default=None, help="Only this finished state (default: all three).")  # fmt: skip
@click.pass_obj
def cleanup(state: CliState, queue: str, older_than: float, state_name: str | None) -> None:
    """Delete finished jobs older than --older-than."""
    count = run_on_queue(state, queue, lambda q: q.cleanup(older_than, state_name))
    click.echo(f"removed {count} job(s)")
