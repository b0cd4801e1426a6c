"""kopf's login: the operator's own credentials (kube_login.py), so kopf neither looks for
the official client nor opens a connection per concurrent request."""

from __future__ import annotations

from typing import Any

import kopf

from jobqueue_operator import kube_login
from jobqueue_operator.config import Config


@kopf.on.login()
async def login(**_: Any) -> kopf.AiohttpSession:
    """kopf's credentials, on a session with a bounded connection pool. kopf owns the
    session: it closes it when the API server refuses the credentials, and logs in again.
    Asynchronous because a session belongs to the running loop (kopf runs a synchronous
    handler in a thread, which has none)."""
    info = kube_login.connection()
    limit = kube_login.kopf_connection_limit(Config.from_env().watch_namespaces)
    return kopf.AiohttpSession(
        server=info.server,
        default_namespace=info.default_namespace,
        priority=info.priority,
        aiohttp_session=kube_login.session(info, limit),
    )
