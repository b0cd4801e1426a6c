"""kopf handlers, one concern per module; importing this package registers them all."""

from jobqueue_operator.handlers import deployment, lifecycle, login, poll, probes, watch

__all__ = ["deployment", "lifecycle", "login", "poll", "probes", "watch"]
