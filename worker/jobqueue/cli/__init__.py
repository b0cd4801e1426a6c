"""The ``jobq`` command line: ``jobq --help`` lists the commands.

Importing the command modules registers them on the ``cli`` group. Other packages add
commands through the ``jobq.commands`` entry point (``jobq dashboard`` comes from
jobqueue_web that way), so jobqueue depends on none of them.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

import click

from jobqueue.cli import jobs, queues, schedules, worker
from jobqueue.cli.app import cli


def _add_plugin_commands() -> None:
    for entry in entry_points(group="jobq.commands"):
        if entry.name in cli.commands:
            continue
        try:
            command = entry.load()
        except Exception as exc:  # a broken plugin must not take jobq down with it
            logging.getLogger("jobqueue.cli").warning("jobq %s unavailable: %s", entry.name, exc)
            continue
        if isinstance(command, click.Command):
            cli.add_command(command, entry.name)


_add_plugin_commands()

__all__ = ["cli", "jobs", "main", "queues", "schedules", "worker"]


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="jobq")
