"""Credentials out of URLs before they reach an error, a log line or a job's result.

A job's error is stored in Redis and shown to whoever reads the job (``jobq show``, the
dashboard), and worker logs go wherever logs go, so ``https://user:pass@host/?token=...`` must
appear in neither as it was sent.
"""

from __future__ import annotations

import logging
import re

__all__ = ["RedactingFilter", "redact_text", "redact_url"]

MASK = "***"
# user:password@ (or a bare token@) right after a scheme.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s?#@]+@")
# Query parameters whose names say they carry a secret: their values are masked.
_SECRET_PARAM = re.compile(
    r"(?i)([?&;][^=&;\s#]*(?:token|key|secret|passw|pwd|sig|auth|credential|session)"
    r"[^=&;\s#]*=)[^&;\s#]*"
)


def redact_text(text: str) -> str:
    """``text`` with the credentials of every URL in it masked."""
    return _SECRET_PARAM.sub(rf"\g<1>{MASK}", _USERINFO.sub(rf"\g<1>{MASK}@", text))


def redact_url(url: str) -> str:
    """``url`` with its user info and secret-looking query values masked."""
    return redact_text(url)


class RedactingFilter(logging.Filter):
    """Masks URL credentials in the records of a logger it is added to (httpx logs every
    request's URL at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
