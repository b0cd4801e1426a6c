"""``http.request``: call an HTTP endpoint; a non-2xx answer fails the attempt.

Payload: ``{"method": "POST", "url": "https://...", "headers": {...}, "params": {...},
"json": <any> | "body": "<text>", "timeout": 30, "follow_redirects": false}``.
Result: ``{"status": 200, "headers": {<a few useful ones>}, "body": <JSON if the answer is
JSON, else text>}``; bodies beyond 1 MiB are cut and flagged with ``"truncated": true``.

Whoever submits a job reads its result, so the handler must not become a way into the
cluster's network (server-side request forgery). Each hop, the first and every redirect:
the host is resolved once, every address is checked against the egress policy
(jobqueue.egress: no loopback, link-local/metadata, private or reserved addresses unless
JOBQUEUE_HTTP_ALLOW opens them), and the connection goes to the checked address (the URL
carries the address; Host and TLS SNI/verification keep the name), so a second DNS answer
can't redirect it. Environment proxies are ignored: a proxy would resolve the name itself.
``timeout`` bounds the whole call (lookups, redirects, body); the body is read as a stream
and reading stops at the cap. Credentials in URLs never appear in errors.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import logging
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jobqueue.builtins.redact import RedactingFilter, redact_text, redact_url
from jobqueue.egress import (
    AllowList,
    DestinationRefused,
    IPAddress,
    allow_list_from_env,
    check_destination,
)
from jobqueue.registry import task
from jobqueue.runtime.context import JobContext
from jobqueue.runtime.failures import PermanentJobError
from jobqueue.runtime.payloads import parse_payload

__all__ = [
    "HttpDeadlineError",
    "HttpRequestError",
    "HttpStatusError",
    "RefusedDestination",
    "RequestPayload",
    "Resolver",
    "fetch",
    "request",
    "resolve_host",
]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Response headers worth keeping in the job's result; the rest would only bloat Redis.
_KEPT_HEADERS = (
    "content-type",
    "content-length",
    "location",
    "etag",
    "last-modified",
    "retry-after",
    "x-request-id",
)
MAX_BODY_BYTES = 1024 * 1024
MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Not sent on to another origin after a redirect.
_ORIGIN_BOUND_HEADERS = ("authorization", "cookie", "proxy-authorization")

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

# httpx logs each request's URL (INFO) and httpcore its connections (DEBUG): mask credentials.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(RedactingFilter())


class HttpStatusError(RuntimeError):
    """The endpoint answered with a status outside 2xx."""


class HttpRequestError(RuntimeError):
    """The request could not be made or completed (name lookup, connection, protocol)."""


class HttpDeadlineError(RuntimeError):
    """The whole call took longer than the payload's ``timeout``."""


class RefusedDestination(PermanentJobError):
    """The egress policy refuses the URL (or a redirect's): retrying cannot help."""


class RequestPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    method: str = "GET"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    body: str | None = None
    timeout: float = Field(default=30.0, gt=0, le=3600)
    follow_redirects: bool = False

    @field_validator("method")
    @classmethod
    def _check_method(cls, value: str) -> str:
        method = value.upper()
        if method not in _METHODS:
            raise ValueError(f"must be one of {', '.join(sorted(_METHODS))}")
        return method

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _one_body(self) -> RequestPayload:
        if "json_body" in self.model_fields_set and self.body is not None:
            raise ValueError("give either json or body, not both")
        return self


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for ``host`` (a literal resolves to itself)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: dict[IPAddress, None] = {}
    for info in infos:
        found[ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])] = None
    return list(found)


async def _pin(url: httpx.URL, allow: AllowList, resolve: Resolver) -> list[httpx.URL]:
    """The URL with its host replaced by each allowed address to try, in resolver order;
    raises RefusedDestination when the policy refuses the host."""
    if url.scheme not in ("http", "https"):
        raise RefusedDestination(f"{redact_url(str(url))}: only http and https are allowed")
    host = url.raw_host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            addresses = await resolve(host, port)
        except OSError as exc:
            raise HttpRequestError(f"cannot resolve {host}: {exc}") from None
    try:
        check_destination(host, addresses, allow)
    except DestinationRefused as exc:
        raise RefusedDestination(f"{redact_url(str(url))}: {exc}") from None
    return [url.copy_with(host=str(ip)) for ip in addresses]


async def _read_capped(response: httpx.Response, cap: int) -> tuple[bytes, bool]:
    """Up to ``cap`` bytes of the (decoded) body; True when there was more. Stops reading
    there, so a huge or endless answer costs at most the cap."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        room = cap - size
        if len(chunk) > room:
            chunks.append(chunk[:room])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


def _decode_body(raw: bytes, truncated: bool, response: httpx.Response) -> Any:
    content_type = response.headers.get("content-type", "")
    if not truncated and "json" in content_type:
        try:
            return json.loads(raw)
        except ValueError:
            pass  # claims JSON but isn't: keep the text
    return raw.decode(response.encoding or "utf-8", errors="replace")


def _host_header(url: httpx.URL) -> str:
    host = url.raw_host.decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    return host if url.port is None else f"{host}:{url.port}"


class _Exchange:
    """One call: the hops of a request and its redirects, each pinned to checked addresses."""

    def __init__(self, args: RequestPayload, allow: AllowList, resolve: Resolver, cap: int):
        self.args, self.allow, self.resolve, self.cap = args, allow, resolve, cap
        self.method = args.method
        self.url = httpx.URL(args.url).copy_merge_params(args.params)
        self.headers = httpx.Headers(args.headers)
        self.content: dict[str, Any] = {}
        if "json_body" in args.model_fields_set:
            self.content["json"] = args.json_body
        elif args.body is not None:
            self.content["content"] = args.body.encode()

    async def run(self, client: httpx.AsyncClient) -> dict[str, Any]:
        for _ in range(MAX_REDIRECTS + 1):
            response = await self._send(client)
            try:
                location = response.headers.get("location")
                if self.args.follow_redirects and response.status_code in _REDIRECTS and location:
                    self._redirect(response.status_code, location)
                    continue
                raw, truncated = await _read_capped(response, self.cap)
            finally:
                await response.aclose()
            return self._result(response, _decode_body(raw, truncated, response), truncated)
        raise HttpRequestError(f"{self.method} {self.shown()}: more than {MAX_REDIRECTS} redirects")

    async def _send(self, client: httpx.AsyncClient) -> httpx.Response:
        pinned = await _pin(self.url, self.allow, self.resolve)
        headers = httpx.Headers(self.headers)
        headers["Host"] = _host_header(self.url)
        extensions: dict[str, Any] = {}
        host = self.url.raw_host.decode("ascii")
        if self.url.scheme == "https" and pinned[0].raw_host.decode("ascii") != host:
            extensions["sni_hostname"] = host  # TLS checks the certificate against the name
        failure: httpx.TransportError | None = None
        for target in pinned:  # the next address only when connecting to one fails
            request = client.build_request(
                self.method, target, headers=headers, extensions=extensions, **self.content
            )
            try:
                return await client.send(request, stream=True)
            except httpx.ConnectError as exc:
                failure = exc
            except httpx.HTTPError as exc:
                raise self._failed(exc) from None
        assert failure is not None
        raise self._failed(failure) from None

    def _redirect(self, status: int, location: str) -> None:
        target = self.url.join(location)
        if (target.scheme, target.raw_host, target.port) != (
            self.url.scheme,
            self.url.raw_host,
            self.url.port,
        ):
            for name in _ORIGIN_BOUND_HEADERS:
                self.headers.pop(name, None)
        # As browsers and httpx do: 303 turns into GET, and so does a POST after 301/302.
        to_get = (status == 303 and self.method != "HEAD") or (
            status in (301, 302) and self.method == "POST"
        )
        if to_get:
            self.method = "GET"
            self.content = {}
            for name in ("content-type", "content-length", "transfer-encoding"):
                self.headers.pop(name, None)
        self.url = target

    def _failed(self, exc: httpx.HTTPError) -> HttpRequestError:
        detail = redact_text(str(exc)) or type(exc).__name__
        return HttpRequestError(f"{self.method} {self.shown()} failed: {detail}")

    def shown(self) -> str:
        return redact_url(str(self.url))

    def _result(self, response: httpx.Response, body: Any, truncated: bool) -> dict[str, Any]:
        if not response.is_success:
            excerpt = body if isinstance(body, str) else json.dumps(body)
            raise HttpStatusError(
                f"{self.method} {self.shown()} answered {response.status_code} "
                f"{response.reason_phrase}: {redact_text(excerpt[:200])}"
            )
        result: dict[str, Any] = {
            "status": response.status_code,
            "headers": {k: response.headers[k] for k in _KEPT_HEADERS if k in response.headers},
            "body": body,
        }
        if truncated:
            result["truncated"] = True
        return result


@functools.lru_cache(maxsize=4)
def _tls_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """The trusted CAs: SSL_CERT_FILE / SSL_CERT_DIR when set (a private CA), else certifi's
    (the arguments are only the cache key: the environment is read again to build it)."""
    return httpx.create_ssl_context(trust_env=True)


async def fetch(
    args: RequestPayload,
    allow: AllowList,
    resolve: Resolver = resolve_host,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> dict[str, Any]:
    """Make the call ``args`` describes under the egress policy ``allow``."""
    exchange = _Exchange(args, allow, resolve, max_body_bytes)
    client = httpx.AsyncClient(
        verify=_tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")),
        timeout=args.timeout,
        follow_redirects=False,
        trust_env=False,
        # No connection is reused: each one was set up for one checked host name.
        limits=httpx.Limits(max_keepalive_connections=0),
    )
    deadline = asyncio.timeout(args.timeout)
    try:
        async with client, deadline:
            return await exchange.run(client)
    except TimeoutError:
        if not deadline.expired():
            raise
        raise HttpDeadlineError(
            f"{exchange.method} {exchange.shown()} did not finish within its timeout of "
            f"{args.timeout:g} s"
        ) from None


@task("http.request")
async def request(ctx: JobContext, payload: Any) -> dict[str, Any]:
    args = parse_payload(RequestPayload, payload, "http.request")
    return await fetch(args, allow_list_from_env(os.environ))
