"""The HTTP API and web dashboard of the job queue (``jobq dashboard``).

It uses the queue only through ``jobqueue.client.AsyncQueue`` and ``jobqueue.stats``, and
learns how JobQueues scale from their status in the Kubernetes API (read-only), never from
the operator's code. ``jobqueue_web.app.create_app`` builds the ASGI application. (Nothing
is imported here: ``jobq`` loads ``jobqueue_web.cli`` at every start, and FastAPI only
when the dashboard runs.)
"""
