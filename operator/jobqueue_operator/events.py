"""Kubernetes events on a JobQueue (posted whatever the log level that kopf mirrors)."""

from __future__ import annotations

import kopf


def normal(body: kopf.Body, reason: str, message: str) -> None:
    kopf.event(body, type="Normal", reason=reason, message=message[:1024])


def warning(body: kopf.Body, reason: str, message: str) -> None:
    kopf.event(body, type="Warning", reason=reason, message=message[:1024])
