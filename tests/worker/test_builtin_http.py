"""``http.request`` against a real local HTTP server (stdlib http.server in a thread)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from jobqueue.builtins.http import HttpStatusError, request
from jobqueue.runtime.context import JobContext
from jobqueue.runtime.failures import PermanentJobError


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-Id", "req-1")
        self.send_header("X-Noise", "dropped")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith("/fail"):
            self._reply(503, b"try later", "text/plain")
        elif self.path.startswith("/text"):
            self._reply(200, b"plain words", "text/plain; charset=utf-8")
        else:
            self._reply(200, json.dumps({"path": self.path}).encode(), "application/json")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        received = self.rfile.read(length).decode()
        echo = {
            "body": received,
            "content_type": self.headers.get("Content-Type"),
            "auth": self.headers.get("Authorization"),
        }
        self._reply(201, json.dumps(echo).encode(), "application/json")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


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
