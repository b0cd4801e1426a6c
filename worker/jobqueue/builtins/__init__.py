"""Handlers every worker has, usable from the bundled image with no user code.

``http.request`` calls an HTTP endpoint; ``debug.echo``, ``debug.sleep`` and ``debug.fail``
exist for smoke tests, demos and benchmarks. Importing this package registers them.
"""

from jobqueue.builtins import debug, http

__all__ = ["debug", "http"]
