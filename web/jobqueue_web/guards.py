"""ASGI guards in front of every route: request size, cross-site writes, security headers.

- A body over ``max_body_bytes`` is refused with 413 before the route sees it, whether the
  client declared its length or streams it (read into memory up to the limit, then handed
  to the route whole).
- A write (any method but GET, HEAD, OPTIONS) that a browser marks as coming from another
  site (``Sec-Fetch-Site: cross-site`` or an ``Origin`` other than the server's own) is
  refused with 403. Tokens travel in a header no other site can make a browser send, so
  this is a second lock, not the first.
- Every answer carries a strict Content-Security-Policy (scripts and styles only from this
  server, no inline code, no framing), ``nosniff`` and ``no-referrer``; API answers are
  never cached. No answer sets a cookie, and no CORS header is ever sent.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

__all__ = ["CSP", "Guards"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _cross_site(scope: Scope) -> str | None:
    """Why a browser request comes from another site, or None."""
    if (_header(scope, b"sec-fetch-site") or "").lower() == "cross-site":
        return "Sec-Fetch-Site says cross-site"
    origin = _header(scope, b"origin")
    if origin is None:
        return None
    host = _header(scope, b"host")
    if origin == "null" or host is None or urlsplit(origin).netloc.lower() != host.lower():
        return f"Origin {origin!r} is not this server"
    return None


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *_SECURITY_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class Guards:
    """The ASGI middleware; ``max_body_bytes`` bounds every request body."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _send_json(send, 413, _too_large(limit))
            return
        if scope["method"] not in _SAFE_METHODS:
            why = _cross_site(scope)
            if why is not None:
                text = f"cross-site write refused: {why}"
                await _send_json(send, 403, {"error": "forbidden", "message": text, "field": None})
                return
            # Read the whole body first (it is bounded), so a route never sees part of one.
            body = bytearray()
            while True:
                chunk = await receive()
                if chunk["type"] != "http.request":
                    return  # the client went away
                body += chunk.get("body", b"")
                if len(body) > limit:
                    await _send_json(send, 413, _too_large(limit))
                    return
                if not chunk.get("more_body", False):
                    break
            receive = _replay(bytes(body), receive)
        api = scope["path"].startswith("/api/")

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"set-cookie"
                ]
                headers += _SECURITY_HEADERS
                if api:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, guarded_send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands over the buffered body once, then waits on the real one (for
    the client's disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def _too_large(limit: int) -> dict[str, Any]:
    return {
        "error": "too_large",
        "message": f"request body is over the limit of {limit} bytes",
        "field": None,
    }
