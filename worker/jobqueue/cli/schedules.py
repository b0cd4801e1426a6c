"""``jobq schedule``: recurring jobs on a queue (add, list, remove, pause, resume)."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.table import Table

from jobqueue.cli.app import CliState, cli
from jobqueue.cli.jobs import QUEUE, run_on_queue
from jobqueue.cli.parsing import DURATION, parse_payload_json
from jobqueue.cli.render import console, echo_json
from jobqueue.protocol.scheduling import ScheduleState

__all__: list[str] = []


@cli.group()
def schedule() -> None:
    """Recurring jobs: a job submitted on each tick of a cron expression or an interval.

    Any worker of the queue (and the operator) submits each tick once; ticks missed while
    nothing ran are run once, for the latest (see --starting-deadline).
    """


@schedule.command(name="add")
@QUEUE
@click.argument("name")
@click.argument("payload_json", required=False, metavar="[PAYLOAD_JSON]")
@click.option("--cron", default=None, help='Cron expression, e.g. "*/5 * * * *".')
@click.option("--every", type=DURATION, default=None, help="Interval instead of cron (30s, 5m).")
@click.option("--tz", "timezone", default=None, help="Time zone of --cron (default UTC).")
@click.option("--schedule", "schedule_name", default=None,
              help="The schedule's own name (default: the job NAME).")  # fmt: skip
@click.option("--priority", type=int, default=None, help="0 (first) to 9 (default 5).")
@click.option("--attempts", type=int, default=None, help="Total tries per job (default 3).")
@click.option("--backoff", default=None, help="fixed:S or exponential:S[,cap=S][,jitter=F].")
@click.option("--timeout", type=DURATION, default=None, help="Per-attempt time limit.")
@click.option("--concurrency", "concurrency_policy",
              type=click.Choice(["Allow", "Forbid", "Replace"]), default=None,
              help="While the last tick's job is unfinished: run anyway (Allow, default), "
              "skip the tick (Forbid), or cancel the last job (Replace).")  # fmt: skip
@click.option("--starting-deadline", "starting_deadline_seconds", type=DURATION, default=None,
              help="Skip a missed tick older than this instead of running it late.")  # fmt: skip
@click.option("--paused", is_flag=True, default=None, help="Add it paused.")
@click.pass_obj
def add(
    state: CliState, /, queue: str, name: str, payload_json: str | None,
    schedule_name: str | None,
    **options: Any,
) -> None:  # fmt: skip
    """Add (or replace) a schedule submitting job NAME (PAYLOAD_JSON "-" reads stdin)."""
    if payload_json == "-":
        payload_json = sys.stdin.read()
    payload = parse_payload_json(payload_json)
    if (options["cron"] is None) == (options["every"] is None):
        raise click.UsageError("give exactly one of --cron and --every")
    schedule_name = schedule_name or name
    found = run_on_queue(
        state, queue, lambda q: q.add_schedule(schedule_name, name, payload=payload, **options)
    )
    click.echo(f"schedule {found.name} added to queue {queue}")


@schedule.command(name="list")
@QUEUE
@click.option("--json", "as_json", is_flag=True, help="Print the schedules as JSON.")
@click.pass_obj
def list_schedules(state: CliState, queue: str, as_json: bool) -> None:
    """List a queue's schedules with their next tick and last run."""
    states = run_on_queue(state, queue, lambda q: q.schedules())
    if as_json:
        echo_json([_as_json(s) for s in states])
    else:
        console().print(_table(queue, states))


@schedule.command()
@QUEUE
@click.argument("name")
@click.pass_obj
def remove(state: CliState, queue: str, name: str) -> None:
    """Delete a schedule (jobs it submitted stay)."""
    run_on_queue(state, queue, lambda q: q.remove_schedule(name))
    click.echo(f"schedule {name} removed")


@schedule.command()
@QUEUE
@click.argument("name")
@click.pass_obj
def pause(state: CliState, queue: str, name: str) -> None:
    """Stop a schedule's ticks until it is resumed."""
    run_on_queue(state, queue, lambda q: q.pause_schedule(name))
    click.echo(f"schedule {name} paused")


@schedule.command()
@QUEUE
@click.argument("name")
@click.pass_obj
def resume(state: CliState, queue: str, name: str) -> None:
    """Resume a paused schedule from now (ticks missed while paused do not run)."""
    run_on_queue(state, queue, lambda q: q.resume_schedule(name))
    click.echo(f"schedule {name} resumed")


def _as_json(state: ScheduleState) -> dict[str, Any]:
    return {
        **state.schedule.model_dump(mode="json"),
        "next_due_ms": state.next_due_ms,
        "last_run": state.runs or None,
    }


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _table(queue: str, states: list[ScheduleState]) -> Table:
    table = Table(title=f"queue {queue} schedules", box=None, pad_edge=False)
    for column in ("NAME", "JOB", "RULE", "NEXT", "LAST JOB", "STATE"):
        table.add_column(column, no_wrap=True)
    for s in states:
        sched = s.schedule
        rule = f"{sched.cron} ({sched.timezone})" if sched.cron else f"every {sched.every:g}s"
        table.add_row(sched.name, sched.job, rule, _when(s.next_due_ms),
                      str(s.runs.get("last_job_id") or "-"),
                      "paused" if sched.paused else "active")  # fmt: skip
    return table
