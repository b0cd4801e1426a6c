"""Exceptions a handler may raise to steer what happens to its job.

Any other exception fails the attempt (retried while attempts remain, then dead-lettered)
with ``"<ExceptionType>: <message>"`` as the job's error.
"""

from __future__ import annotations

__all__ = ["JobCancelled", "PermanentJobError", "format_error"]


class PermanentJobError(Exception):
    """Retrying cannot help (bad payload, missing resource): the job goes straight to the
    dead letter, whatever attempts remain."""


class JobCancelled(Exception):
    """Raised by a handler that stops because ``ctx.cancelled`` became true."""


_MAX_ERROR_CHARS = 4096


def format_error(exc: BaseException) -> str:
    """``Type: message`` for the job's error field, bounded so a huge message can't bloat Redis."""
    message = str(exc)
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    if len(text) > _MAX_ERROR_CHARS:
        text = text[: _MAX_ERROR_CHARS - 15] + "... (truncated)"
    return text
