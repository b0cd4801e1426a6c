"""A small asyncio client of the Kubernetes REST API for the supervisor.

The supervisor needs a handful of verbs on plain JSON (get, server-side apply); httpx keeps
that readable without mixing the thread-based `kubernetes` client into asyncio.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import httpx

JSON = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


class ApiError(Exception):
    """A non-2xx answer of the API server, or status 0: it could not be reached (or the
    connection broke), which callers treat as transient."""

    def __init__(self, status: int, body: str) -> None:
        self.status = status
        self.body = body
        try:
            decoded = json.loads(body)
        except ValueError:
            decoded = None
        message = decoded.get("message", body) if isinstance(decoded, dict) else body
        super().__init__(f"HTTP {status}: {message}")


class KubeApi:
    """Client-certificate authenticated access to one API server."""

    def __init__(self, server: str, ca: Path, cert: Path, key: Path) -> None:
        context = ssl.create_default_context(cafile=str(ca))
        context.load_cert_chain(str(cert), str(key))
        self._http = httpx.AsyncClient(
            base_url=server, verify=context, timeout=httpx.Timeout(30.0, connect=5.0)
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> JSON:
        content = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if content is not None else {}
        try:
            response = await self._http.request(
                method, path, content=content, params=params, headers=headers
            )
        except httpx.HTTPError as e:
            raise ApiError(0, f"{method} {path}: {e!r}") from e
        if response.status_code >= 300:
            raise ApiError(response.status_code, response.text)
        return response.json() if response.content else {}

    async def get(self, path: str, **params: Any) -> JSON:
        return await self.request("GET", path, params=params or None)

    async def create(self, path: str, body: JSON) -> JSON:
        return await self.request("POST", path, body=body)

    async def patch(self, path: str, body: JSON, content_type: str = MERGE_PATCH) -> JSON:
        return await self.request("PATCH", path, body=body, content_type=content_type)

    async def apply(self, path: str, body: JSON, field_manager: str = "localcluster") -> JSON:
        """Server-side apply (JSON is YAML): creates the object or brings it to ``body``."""
        params = {"fieldManager": field_manager, "force": "true"}
        return await self.request("PATCH", path, body=body, params=params, content_type=APPLY_PATCH)

    async def delete(self, path: str, body: JSON | None = None) -> JSON:
        return await self.request("DELETE", path, body=body)
