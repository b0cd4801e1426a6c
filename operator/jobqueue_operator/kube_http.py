"""Asynchronous requests to the API server for the operator's frequent calls (status
patches, Deployment reads, scales), made with the official client's configuration: its
host, TLS files and bearer token (refreshed through the client's own hook, as the
in-cluster token and exec credentials are).

Why not the official client in a worker thread: at 1,000 JobQueues each status write cost
the operator about 8 ms of CPU, most of it the synchronous client (request validation,
serialisation, urllib3, a thread hand-off) rather than the request; aiohttp, which kopf
already runs on, does the same request on the event loop for a fraction of that.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any

import aiohttp
from kubernetes import client
from kubernetes.client.exceptions import ApiException


class HttpError(ApiException):
    """A refused request, as the official client raises it (status, reason, body)."""

    def __init__(self, status: int, reason: str, body: str) -> None:
        super().__init__(status=status, reason=reason)
        self.body = body


# Requests in flight at once; the rest wait their turn before their timeout starts. 1,000
# loops writing their first status together must queue here, not time out in aiohttp's
# connection pool (its timeout counts the wait for a connection) nor crowd the API server.
MAX_IN_FLIGHT = 8


class KubeHttp:
    """One aiohttp session to the API server (made on first use, in the running loop)."""

    def __init__(
        self,
        configuration: client.Configuration,
        timeout: float,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self._config = configuration
        self._timeout = timeout
        self._max_in_flight = max_in_flight
        self._session: aiohttp.ClientSession | None = None
        self._turns: asyncio.Semaphore | None = None
        self._ssl: ssl.SSLContext | bool = self._ssl_context()

    def _ssl_context(self) -> ssl.SSLContext | bool:
        config = self._config
        if not config.host.startswith("https"):
            return False
        context = ssl.create_default_context(cafile=config.ssl_ca_cert or None)
        if config.cert_file:
            context.load_cert_chain(config.cert_file, config.key_file or None)
        if not config.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        # auth_settings() calls the client's refresh hook: a rotated token is picked up.
        auth: dict[str, Any]
        for auth in self._config.auth_settings().values():  # type: ignore[assignment]
            if auth["in"] == "header" and auth["value"]:
                headers[auth["key"]] = auth["value"]
        return headers

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The response's JSON; HttpError for a status of 400 or more, TimeoutError when
        the request took longer than the timeout (its wait for a turn not counted)."""
        if self._session is None or self._turns is None:
            connector = aiohttp.TCPConnector(limit=self._max_in_flight)
            self._session = aiohttp.ClientSession(connector=connector)
            self._turns = asyncio.Semaphore(self._max_in_flight)
        async with self._turns, asyncio.timeout(self._timeout):
            return await self._send(self._session, method, path, body, content_type, params)

    async def _send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        path: str,
        body: Any,
        content_type: str | None,
        params: dict[str, str] | None,
    ) -> dict[str, Any]:
        data = None if body is None else json.dumps(body)
        async with session.request(
            method,
            self._config.host.rstrip("/") + path,
            data=data,
            params=params,
            headers=self._headers(content_type),
            ssl=self._ssl,
            server_hostname=self._config.tls_server_name or None,
        ) as response:
            text = await response.text()
            if response.status >= 400:
                raise HttpError(response.status, response.reason or "", text)
            parsed: dict[str, Any] = json.loads(text) if text else {}
            return parsed

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
