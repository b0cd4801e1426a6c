"""The operator's asynchronous API requests (kube_http) against a local HTTP server on
loopback: requests queue for their turn without timing out, a refusal carries its status,
the bearer token goes with each request, and a 401 logs in again (a rotated token)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import kopf
import pytest
from aiohttp import web
from jobqueue_operator.kube_http import HttpError, KubeHttp


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    seen: dict[str, Any] = {"in_flight": 0, "most": 0, "auth": set(), "types": []}

    async def slow(request: web.Request) -> web.Response:
        seen["in_flight"] += 1
        seen["most"] = max(seen["most"], seen["in_flight"])
        seen["auth"].add(request.headers.get("authorization"))
        seen["types"].append(request.headers.get("content-type"))
        await asyncio.sleep(0.2)
        seen["in_flight"] -= 1
        return web.json_response({"echo": await request.json() if request.can_read_body else None})

    async def missing(_: web.Request) -> web.Response:
        return web.json_response({"reason": "NotFound"}, status=404)

    async def token_2_only(request: web.Request) -> web.Response:
        if request.headers.get("authorization") != "Bearer token-2":
            return web.json_response({"reason": "Unauthorized"}, status=401)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/slow", slow)
    app.router.add_get("/missing", missing)
    app.router.add_get("/token-2-only", token_2_only)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


def _login(host: str, *tokens: str) -> Any:
    """A login that hands out ``tokens`` in turn (the last one from then on)."""
    handed = list(tokens or ("token-1",))

    def login() -> kopf.ConnectionInfo:
        token = handed.pop(0) if len(handed) > 1 else handed[0]
        return kopf.ConnectionInfo(server=host, token=token)

    return login


async def test_requests_past_the_limit_wait_their_turn_without_timing_out(
    server: tuple[str, dict[str, Any]],
) -> None:
    host, seen = server
    # 12 requests of 0.2 s, 2 at a time: 1.2 s in all, each within its 0.5 s timeout.
    http = KubeHttp(_login(host), timeout=0.5, max_in_flight=2)
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
    http = KubeHttp(_login(host), timeout=5)
    try:
        with pytest.raises(HttpError) as caught:
            await http.request("GET", "/missing")
    finally:
        await http.close()
    assert caught.value.status == 404
    assert "NotFound" in caught.value.body


async def test_credentials_refused_log_in_again_once(
    server: tuple[str, dict[str, Any]],
) -> None:
    """The pod's ServiceAccount token rotates: the API server answers 401 to the old one,
    the request logs in again (reading the new token) and goes through."""
    host, _ = server
    http = KubeHttp(_login(host, "token-1", "token-2"), timeout=5)
    try:
        assert await http.request("GET", "/token-2-only") == {"ok": True}
        assert await http.request("GET", "/token-2-only") == {"ok": True}  # kept
    finally:
        await http.close()
    still_refused = KubeHttp(_login(host, "token-1"), timeout=5)
    try:
        with pytest.raises(HttpError) as caught:
            await still_refused.request("GET", "/token-2-only")
    finally:
        await still_refused.close()
    assert caught.value.status == 401


async def test_a_body_without_a_content_type_goes_as_json(
    server: tuple[str, dict[str, Any]],
) -> None:
    """A create or replace (a Lease) names no content type: the API server refuses anything
    but JSON or YAML with 415, so the body must not go as aiohttp's default text/plain."""
    host, seen = server
    http = KubeHttp(_login(host), timeout=5)
    try:
        await http.request("POST", "/slow", {"n": 1})
        await http.request("PATCH", "/slow", {"n": 2}, content_type="application/merge-patch+json")
    finally:
        await http.close()
    assert seen["types"] == ["application/json", "application/merge-patch+json"]
