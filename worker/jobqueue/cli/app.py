"""The ``jobq`` command group, its global options and the error policy of every command.

Errors end the command with one line on stderr (``jobq: error: ...``) and an exit code:
2 for bad input (nothing was written to Redis), 1 for an unknown job, a refused operation or
an unreachable Redis. ``jobq wait`` adds 3 for a timeout.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import click
import redis.exceptions

from jobqueue.builtins.redact import redact_url
from jobqueue.connection import AnyRedis, connect
from jobqueue.endpoints import parse_redis_url
from jobqueue.errors import InvalidJob, InvalidState, JobNotFound, JobqueueError
from jobqueue.runtime.settings import default_redis_url

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILURE", "EXIT_TIMEOUT", "CliState", "JobqGroup", "cli"]

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_TIMEOUT = 3


def _one_line(text: str) -> str:
    return " ".join(text.split())


def fail(message: str, code: int = EXIT_FAILURE) -> None:
    """Print ``jobq: error: <message>`` on stderr and exit with ``code``."""
    click.echo(f"jobq: error: {_one_line(message)}", err=True)
    sys.exit(code)


class CliState:
    """What the group passes to its commands: where Redis is."""

    def __init__(self, redis_url: str, password: str | None) -> None:
        self.redis_url = redis_url
        self.password = password

    def connect(self) -> AnyRedis:
        return connect(self.redis_url, self.password)


class JobqGroup(click.Group):
    """A click group whose errors are single lines with the exit codes documented above.

    Overriding ``main`` (rather than wrapping the console script) makes click's CliRunner
    see exactly what a user sees.
    """

    redis_url = "?"

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        self.redis_url = default_redis_url()  # replaced by the group callback
        try:
            code = super().main(
                args=args, prog_name=prog_name or "jobq", complete_var=complete_var,
                standalone_mode=False, **extra,
            )  # fmt: skip
        except click.UsageError as exc:
            fail(_usage_message(exc), EXIT_BAD_INPUT)
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            fail("aborted", EXIT_FAILURE)
        except InvalidJob as exc:
            fail(str(exc), EXIT_BAD_INPUT)
        except (JobNotFound, InvalidState) as exc:
            fail(str(exc), EXIT_FAILURE)
        except redis.exceptions.AuthenticationError as exc:  # a ConnectionError subclass
            where = redact_url(self.redis_url)
            fail(f"Redis refused the credentials for {where}: {exc}", EXIT_FAILURE)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            fail(f"cannot reach Redis at {redact_url(self.redis_url)}: {exc}", EXIT_FAILURE)
        except redis.exceptions.ResponseError as exc:
            fail(f"Redis answered with an error: {exc}", EXIT_FAILURE)
        except JobqueueError as exc:
            fail(str(exc), EXIT_FAILURE)
        if standalone_mode:
            sys.exit(code if isinstance(code, int) else 0)
        return code


def _usage_message(exc: click.UsageError) -> str:
    """Click's message, prefixed with the subcommand it concerns (if any)."""
    message = exc.format_message()
    path = exc.ctx.command_path if exc.ctx is not None else ""
    subcommand = path.partition(" ")[2].strip()
    return f"{subcommand}: {message}" if subcommand else message


@click.group(cls=JobqGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--redis",
    "redis_url",
    metavar="URL",
    default=None,
    help="Redis URL: redis[s]://host:port/db, redis[s]+sentinel://host:port[,host:port...]"
    "/MASTER/db or redis[s]+cluster://host:port[,host:port...] (default: "
    "$JOBQUEUE_REDIS_URL, then $REDIS_URL, then redis://localhost:6379/0).",
)
@click.version_option(package_name="jobqueue-operator", prog_name="jobq")
@click.pass_context
def cli(ctx: click.Context, redis_url: str | None) -> None:
    """Submit, inspect and run jobs of a Redis job queue."""
    url = redis_url or default_redis_url()
    try:
        parse_redis_url(url)
    except ValueError as exc:
        raise click.BadParameter(f"{redact_url(url)!r}: {exc}", param_hint="--redis") from None
    if isinstance(ctx.command, JobqGroup):
        ctx.command.redis_url = url  # for the error message if Redis is unreachable
    ctx.obj = CliState(url, os.environ.get("JOBQUEUE_REDIS_PASSWORD") or None)
