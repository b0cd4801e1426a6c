"""Human output of the CLI (rich tables) and JSON output (one document on stdout)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from jobqueue.models import Job, QueueSettings, QueueStats

__all__ = ["echo_json", "job_table", "jobs_table", "settings_table", "stats_table"]


def console() -> Console:
    """A console on the current stdout (built per call so CliRunner's capture is used).

    Off a terminal, tables get all the width they need: ids must not be cut in pipes.
    """
    stream = sys.stdout  # looked up per call: CliRunner swaps it
    width = None if stream.isatty() else 1000
    return Console(file=stream, width=width, soft_wrap=True, highlight=False)


def echo_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=False, default=str))


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "-"


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _stored(job: Job, field: str, value: Any) -> str:
    if field in job.corrupt_fields:  # kept as the raw stored text
        return f"{value} (stored text is not valid JSON)"
    return json.dumps(value, default=str)


def job_table(job: Job) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    rows: list[tuple[str, str]] = [
        ("id", job.id),
        ("queue", job.queue),
        ("name", job.name),
        ("state", job.state.value),
        ("priority", str(job.priority)),
        ("attempts", f"{job.attempts}/{job.max_attempts}"),
        ("lease lapses", str(job.lapses)),
        (
            "progress",
            f"{job.progress:g}%" + (f" {job.progress_message}" if job.progress_message else ""),
        ),
        ("payload", _stored(job, "payload", job.payload)),
        ("result", _stored(job, "result", job.result) if job.result is not None else "-"),
        ("error", job.error or "-"),
        ("created_at", _when(job.created_at)),
        ("started_at", _when(job.started_at)),
        ("finished_at", _when(job.finished_at)),
    ]
    if job.run_at:
        rows.append(("run_at", _when(job.run_at)))
    if job.dedup_key:
        rows.append(("dedup_key", job.dedup_key))
    if job.timeout:
        rows.append(("timeout", f"{job.timeout:g}s"))
    if job.handbacks:
        rows.append(("handed back", f"{job.handbacks} time(s): no handler in those workers"))
    if job.corrupt_fields:
        rows.append(("damaged fields", ", ".join(job.corrupt_fields)))
    for key, value in rows:
        table.add_row(key, value)
    return table


def jobs_table(jobs: Iterable[Job]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("ID", "NAME", "STATE", "PRIO", "TRIES", "PROGRESS", "CREATED", "ERROR"):
        table.add_column(column, no_wrap=column != "ERROR")
    for job in jobs:
        table.add_row(
            job.id, job.name, job.state.value, str(job.priority),
            f"{job.attempts}/{job.max_attempts}", f"{job.progress:g}%", _when(job.created_at),
            _short(job.error or _corrupt_note(job)),
        )  # fmt: skip
    return table


def _corrupt_note(job: Job) -> str:
    if not job.corrupt_fields:
        return ""
    return "stored " + " and ".join(job.corrupt_fields) + " not valid JSON"


def stats_table(stats: QueueStats) -> Table:
    table = Table(title=f"queue {stats.queue}", show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("queued", stats.queued),
        ("active", stats.active),
        ("delayed", f"{stats.delayed} ({stats.delayed_due} due)"),
        ("completed", stats.completed),
        ("failed", stats.failed),
        ("cancelled", stats.cancelled),
        ("oldest queued", f"{stats.oldest_queued_age_seconds:.1f}s"),
        ("last 1m", f"{stats.completed_1m} ok / {stats.failed_1m} failed"),
        ("last 5m", f"{stats.completed_5m} ok / {stats.failed_5m} failed"),
        ("lease lapses", f"{stats.lapsed_1m} last 1m / {stats.lapsed_5m} last 5m"),
        ("schedules", _schedules_line(stats)),
        (f"failure ratio ({stats.window_seconds}s)", f"{stats.failure_ratio:.1%}"),
        ("workers", len(stats.workers)),
    ]
    for key, value in rows:
        table.add_row(key, str(value))
    for worker in stats.workers:
        table.add_row(
            f"  {worker.name}",
            f"{worker.jobs_in_hand}/{worker.concurrency} busy on {worker.host} pid {worker.pid}",
        )
    return table


def _schedules_line(stats: QueueStats) -> str:
    if not stats.schedules:
        return "none"
    soon = stats.next_schedule_in_seconds
    nxt = "none active" if soon is None else f"next tick in {soon:.1f}s"
    return f"{stats.schedules} ({nxt})"


def settings_table(queue: str, settings: QueueSettings, stored: Iterable[str]) -> Table:
    table = Table(title=f"queue {queue} settings", box=None, pad_edge=False)
    for column in ("SETTING", "VALUE", "SOURCE"):
        table.add_column(column)
    set_here = set(stored)
    for name, value in settings.model_dump().items():
        table.add_row(name, f"{value:g}" if isinstance(value, float) else str(value),
                      "stored" if name in set_here else "default")  # fmt: skip
    return table


def queues_table(rows: Iterable[QueueStats]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("QUEUE", "QUEUED", "ACTIVE", "DELAYED", "FAILED", "OLDEST", "WORKERS"):
        table.add_column(column)
    for s in rows:
        table.add_row(
            s.queue, str(s.queued), str(s.active), str(s.delayed), str(s.failed),
            f"{s.oldest_queued_age_seconds:.1f}s", str(len(s.workers)),
        )  # fmt: skip
    return table
