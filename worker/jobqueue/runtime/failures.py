"""Exceptions a handler may raise to steer what happens to its job.

Any other exception fails the attempt (retried while attempts remain, then dead-lettered)
with ``"<ExceptionType>: <message>"`` as the job's error.
"""

from __future__ import annotations

__all__ = ["JobCancelled", "PermanentJobError", "format_error", "printable_text"]


class PermanentJobError(Exception):
    """Retrying cannot help (bad payload, missing resource): the job goes straight to the
    dead letter, whatever attempts remain."""


class JobCancelled(Exception):
    """Raised by a handler that stops because ``ctx.cancelled`` became true."""


_MAX_ERROR_CHARS = 4096


def printable_text(text: str) -> str:
    """``text`` as valid UTF-8: lone surrogates (undecodable bytes smuggled in by
    ``surrogateescape``, broken pairs) become backslash escapes instead of making the
    report that carries them fail."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def format_error(exc: BaseException) -> str:
    """``Type: message`` for the job's error field, bounded so a huge message can't bloat
    Redis, and always valid UTF-8. An exception carrying its text already (``formatted``,
    e.g. from a handler in a child process) is recorded as it is."""
    formatted = getattr(exc, "formatted", None)
    if isinstance(formatted, str):
        return _bounded(printable_text(formatted))
    try:
        message = printable_text(str(exc))
    except Exception as broken:  # an exception whose __str__ itself raises
        message = f"<unprintable {type(exc).__name__}: {type(broken).__name__}>"
    return _bounded(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)


def _bounded(text: str) -> str:
    if len(text) > _MAX_ERROR_CHARS:
        text = text[: _MAX_ERROR_CHARS - 15] + "... (truncated)"
    return text
