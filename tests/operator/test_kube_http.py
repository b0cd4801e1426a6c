"""The operator's asynchronous API requests (kube_http) against a local HTTP server on
loopback: requests queue for their turn without timing out, errors keep the official
client's shape, the bearer token goes with each request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from jobqueue_operator.kube_http import HttpError, KubeHttp
from kubernetes import client


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    seen: dict[str, Any] = {"in_flight": 0, "most": 0, "auth": set()}

    async def slow(request: web.Request) -> web.Response:
        seen["in_flight"] += 1
        seen["most"] = max(seen["most"], seen["in_flight"])
        seen["auth"].add(request.headers.get("authorization"))
        await asyncio.sleep(0.2)
        seen["in_flight"] -= 1
        return web.json_response({"echo": await request.json() if request.can_read_body else None})

    async def missing(_: web.Request) -> web.Response:
        return web.json_response({"reason": "NotFound"}, status=404)

    app = web.Application()
    app.router.add_route("*", "/slow", slow)
    app.router.add_get("/missing", missing)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


def _config(host: str) -> client.Configuration:
    config = client.Configuration(host=host)
    config.api_key = {"authorization": "token-1"}
    config.api_key_prefix = {"authorization": "Bearer"}
    return config


async def test_requests_past_the_limit_wait_their_turn_without_timing_out(
    server: tuple[str, dict[str, Any]],
) -> None:
    host, seen = server
    # 12 requests of 0.2 s, 2 at a time: 1.2 s in all, each within its 0.5 s timeout.
    http = KubeHttp(_config(host), timeout=0.5, max_in_flight=2)
    try:
        bodies = await asyncio.gather(
            *(http.request("PATCH", "/slow", {"n": n}, content_type="application/json")
              for n in range(12))
        )  # fmt: skip
    finally:
        await http.close()
    assert [b["echo"]["n"] for b in bodies] == list(range(12))
    assert seen["most"] == 2
    assert seen["auth"] == {"Bearer token-1"}


async def test_a_refused_request_raises_with_its_status(
    server: tuple[str, dict[str, Any]],
) -> None:
    host, _ = server
    http = KubeHttp(_config(host), timeout=5)
    try:
        with pytest.raises(HttpError) as caught:
            await http.request("GET", "/missing")
    finally:
        await http.close()
    assert caught.value.status == 404
    assert "NotFound" in caught.value.body
