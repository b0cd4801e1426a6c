"""The ``jobq`` command line: ``jobq --help`` lists the commands.

Importing the command modules registers them on the ``cli`` group.
"""

from __future__ import annotations

from jobqueue.cli import jobs, queues, schedules, worker
from jobqueue.cli.app import cli

__all__ = ["cli", "jobs", "main", "queues", "schedules", "worker"]


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="jobq")
