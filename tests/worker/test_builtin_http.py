"""``http.request`` against real local HTTP servers (stdlib http.server in threads, on loopback).

Loopback is refused by default, so most tests open it with the allow list the worker reads
(JOBQUEUE_HTTP_ALLOW); the tests of refusals check that the refused server saw no request.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from jobqueue.builtins.http import (
    HttpDeadlineError,
    HttpRequestError,
    HttpStatusError,
    RefusedDestination,
    RequestPayload,
    fetch,
    request,
)
from jobqueue.egress import AllowList, IPAddress
from jobqueue.runtime.context import JobContext
from jobqueue.runtime.failures import PermanentJobError
from tlsfiles import make_pki

MiB = 1024 * 1024


class Server:
    """A local HTTP server that counts the requests it gets, by path."""

    def __init__(self, host: str, tls: ssl.SSLContext | None = None) -> None:
        self.hits: Counter[str] = Counter()
        self.release = threading.Event()  # ends the answers that hold their connection
        self.httpd = ThreadingHTTPServer((host, 0), _handler_for(self))
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
            # a refused handshake is what some tests expect: not worth a traceback
            self.httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler_for(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: bytes, content_type: str, **extra: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Request-Id", "req-1")
            self.send_header("X-Noise", "dropped")
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path, query = urlsplit(self.path).path, parse_qs(urlsplit(self.path).query)
            server.hits[path] += 1
            if path == "/fail":
                self._reply(503, b"try later; see http://u:hunter2@x/", "text/plain")
            elif path == "/text":
                self._reply(200, b"plain words", "text/plain; charset=utf-8")
            elif path == "/host":
                host = (self.headers.get("Host") or "").encode()
                self._reply(200, json.dumps({"host": host.decode()}).encode(), "application/json")
            elif path == "/redirect":
                self._reply(302, b"", "text/plain", Location=query["to"][0])
            elif path == "/big":
                # 8 MiB, then the connection stays open: only a reader that stops at its cap
                # returns before the server lets go.
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                for _ in range(8):
                    self.wfile.write(b"x" * MiB)
                self.wfile.flush()
                server.release.wait(30)
            elif path == "/trickle":
                # one byte every 0.2 s for up to 20 s: every read is quick, the whole is not
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "100")
                self.end_headers()
                for _ in range(100):
                    if server.release.wait(0.2):
                        return
                    self.wfile.write(b".")
                    self.wfile.flush()
            else:
                self._reply(200, json.dumps({"path": self.path}).encode(), "application/json")

        def do_POST(self) -> None:
            server.hits[urlsplit(self.path).path] += 1
            length = int(self.headers.get("Content-Length") or 0)
            received = self.rfile.read(length).decode()
            echo = {
                "body": received,
                "content_type": self.headers.get("Content-Type"),
                "auth": self.headers.get("Authorization"),
            }
            self._reply(201, json.dumps(echo).encode(), "application/json")

    return Handler


@pytest.fixture(scope="module")
def local() -> Iterator[Server]:
    server = Server("127.0.0.1")
    yield server
    server.close()


@pytest.fixture(scope="module")
def other() -> Iterator[Server]:
    """A second loopback server, at an address the tests leave out of the allow list."""
    server = Server("127.0.0.2")
    yield server
    server.close()


@pytest.fixture
def server(local: Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """The local server's URL, with 127.0.0.1 on the worker's allow list."""
    monkeypatch.setenv("JOBQUEUE_HTTP_ALLOW", "127.0.0.1/32")
    return local.url


def ctx() -> JobContext:
    async def report(percent: float, message: str | None) -> None:
        return None

    return JobContext(job_id="j", queue="q", name="http.request", attempt=1, max_attempts=1,
                      reporter=report)  # fmt: skip


async def test_get_json_with_params(server: str) -> None:
    result = await request(ctx(), {"url": f"{server}/items", "params": {"page": "2"}})
    assert result["status"] == 200
    assert result["body"] == {"path": "/items?page=2"}
    assert result["headers"]["x-request-id"] == "req-1"
    assert "x-noise" not in result["headers"]


async def test_post_json_and_raw_body_with_headers(server: str) -> None:
    sent = await request(
        ctx(),
        {"method": "post", "url": server, "json": {"a": 1}, "headers": {"Authorization": "t"}},
    )
    assert sent["status"] == 201
    assert json.loads(sent["body"]["body"]) == {"a": 1}
    assert sent["body"]["content_type"] == "application/json"
    assert sent["body"]["auth"] == "t"
    raw = await request(ctx(), {"method": "POST", "url": server, "body": "x=1"})
    assert raw["body"]["body"] == "x=1"


async def test_text_body_is_returned_as_text(server: str) -> None:
    result = await request(ctx(), {"url": f"{server}/text"})
    assert result["body"] == "plain words"


async def test_non_2xx_fails_the_attempt_with_status_and_excerpt(server: str) -> None:
    with pytest.raises(HttpStatusError, match=r"GET .*/fail answered 503 Service Unavailable: try"):
        await request(ctx(), {"url": f"{server}/fail"})


async def test_loopback_is_refused_by_default_without_a_request(
    local: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOBQUEUE_HTTP_ALLOW", raising=False)
    before = local.hits["/default"]
    with pytest.raises(RefusedDestination, match=r"127\.0\.0\.1 is in a range.*loopback"):
        await request(ctx(), {"url": f"{local.url}/default"})
    assert local.hits["/default"] == before
    # refused for good: no retry can change the policy's answer
    assert issubclass(RefusedDestination, PermanentJobError)


async def test_localhost_by_name_is_refused(local: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOBQUEUE_HTTP_ALLOW", raising=False)
    with pytest.raises(RefusedDestination, match="localhost"):
        await request(ctx(), {"url": f"http://localhost:{local.port}/by-name"})
    assert local.hits["/by-name"] == 0


async def test_every_redirect_is_checked(server: str, other: Server) -> None:
    target = f"{other.url}/landed"  # 127.0.0.2: not on the allow list
    with pytest.raises(RefusedDestination, match=r"127\.0\.0\.2"):
        await request(
            ctx(), {"url": f"{server}/redirect", "params": {"to": target}, "follow_redirects": True}
        )
    assert other.hits["/landed"] == 0


async def test_allowed_redirects_are_followed(server: str) -> None:
    result = await request(
        ctx(), {"url": f"{server}/redirect", "params": {"to": "/text"}, "follow_redirects": True}
    )
    assert result["body"] == "plain words"
    with pytest.raises(HttpStatusError, match="answered 302"):  # not followed: not a 2xx
        await request(ctx(), {"url": f"{server}/redirect", "params": {"to": "/text"}})


def rebinding_resolver(answers: list[str]) -> tuple[Callable[..., Any], list[str]]:
    """A resolver whose answer changes with each lookup (a rebinding DNS server)."""
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[IPAddress]:
        import ipaddress

        asked.append(host)
        return [ipaddress.ip_address(answers[min(len(asked), len(answers)) - 1])]

    return resolve, asked


async def test_a_host_is_resolved_once_and_the_checked_address_is_used(
    local: Server, other: Server
) -> None:
    resolve, asked = rebinding_resolver(["127.0.0.1", "127.0.0.2"])
    args = RequestPayload(url=f"http://service.test:{local.port}/host")
    result = await fetch(args, AllowList.parse(["127.0.0.1/32"]), resolve)
    assert asked == ["service.test"]
    assert result["body"] == {"host": f"service.test:{local.port}"}  # the name, not the address
    # A redirect is a new hop: resolved and checked again, so the rebound answer is refused.
    hop = RequestPayload(
        url=f"http://service.test:{local.port}/redirect",
        params={"to": f"http://service.test:{other.port}/host"},
        follow_redirects=True,
    )
    with pytest.raises(RefusedDestination, match=r"service\.test \(127\.0\.0\.2\)"):
        await fetch(hop, AllowList.parse(["127.0.0.1/32"]), resolve)
    assert other.hits["/host"] == 0


async def test_the_body_is_read_up_to_the_cap_only(server: str, local: Server) -> None:
    started = time.monotonic()
    result = await request(ctx(), {"url": f"{server}/big", "timeout": 20})
    assert result["truncated"] is True
    assert len(result["body"]) == MiB
    # it returned while the server still held the connection open
    assert not local.release.is_set()
    assert time.monotonic() - started < 20


async def test_the_timeout_bounds_the_whole_call(server: str) -> None:
    # Each read of /trickle is quick; only a deadline on the whole call stops it early.
    with pytest.raises(HttpDeadlineError, match=r"GET .*/trickle did not finish within .* 1 s"):
        await request(ctx(), {"url": f"{server}/trickle", "timeout": 1})


async def test_credentials_in_urls_never_reach_errors(
    server: str, local: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_url = f"http://alice:s3cret@127.0.0.1:{local.port}/fail?token=t0k3n&page=2"
    with pytest.raises(HttpStatusError) as failed:
        await request(ctx(), {"url": secret_url})
    message = str(failed.value)
    assert "s3cret" not in message and "t0k3n" not in message and "hunter2" not in message
    assert "***@127.0.0.1" in message and "token=***" in message and "page=2" in message
    monkeypatch.delenv("JOBQUEUE_HTTP_ALLOW")
    with pytest.raises(RefusedDestination) as refused:
        await request(ctx(), {"url": secret_url})
    assert "s3cret" not in str(refused.value) and "t0k3n" not in str(refused.value)


async def test_credentials_in_urls_never_reach_the_logs(
    server: str, local: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"http://alice:s3cret@127.0.0.1:{local.port}/text?api_key=k3y"
    await request(ctx(), {"url": url})
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "HTTP Request" in logged  # httpx did log the request ...
    assert "s3cret" not in logged and "k3y" not in logged  # ... without the credentials


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"url": "ftp://x"}, "url"),
        ({}, "url"),
        ({"url": "http://x", "method": "BREW"}, "method"),
        ({"url": "http://x", "json": {}, "body": "y"}, "either json or body"),
        ({"url": "http://x", "timeout": 0}, "timeout"),
        ({"url": "http://x", "surprise": 1}, "surprise"),
        ("not an object", "payload"),
    ],
)
async def test_bad_payloads_are_permanent_errors(payload: Any, fragment: str) -> None:
    with pytest.raises(PermanentJobError, match=fragment):
        await request(ctx(), payload)


async def test_tls_verifies_the_name_while_connecting_to_the_checked_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki = make_pki(tmp_path, server_names=("service.test",))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pki.server_cert, pki.server_key)
    server = Server("127.0.0.1", tls)
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_cert))
    allow = AllowList.parse(["127.0.0.1/32"])
    try:
        resolve, _ = rebinding_resolver(["127.0.0.1"])
        url = f"https://service.test:{server.port}/host"
        result = await fetch(RequestPayload(url=url), allow, resolve)
        assert result["body"] == {"host": f"service.test:{server.port}"}
        # the same address under a name the certificate does not carry is refused by TLS
        wrong = f"https://wrong.test:{server.port}/host"
        with pytest.raises(HttpRequestError, match=r"wrong\.test.*CERTIFICATE_VERIFY_FAILED"):
            await fetch(RequestPayload(url=wrong), allow, resolve)
    finally:
        server.close()
