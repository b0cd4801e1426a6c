"""Who may do what: every operation of the OpenAPI document refuses a missing or unknown token
(401) and a read-only token's writes (403), and a refused request changes nothing in Redis.
Also: bodies over the limit (413), writes a browser marks as cross-site, no cookies, no CORS.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from web_helpers import Web

pytest_plugins = ["web_fixtures"]
pytestmark = pytest.mark.redis

WRITE_METHODS = {"post", "put", "patch", "delete"}
BODIES: dict[str, Any] = {
    "/api/v1/queues/{queue}/jobs": {"name": "echo", "payload": {"n": 1}},
    "/api/v1/queues/{queue}/jobs/bulk": {"jobs": [{"name": "echo"}]},
    "/api/v1/queues/{queue}/cleanup": {"older_than_seconds": 0},
}


async def operations(web: Web) -> list[tuple[str, str, bool]]:
    """(method, path template, needs a token) of every documented operation."""
    document = (await web.http.get("/openapi.json")).json()
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            found.append((method, path, bool(operation.get("security"))))
    return found


async def seeded(web: Web) -> dict[str, str]:
    """A queue with a failed job and a queued one (so every route has something to act on)."""
    headers = web.tokens.as_writer
    failed = (
        await web.http.post("/api/v1/queues/work/jobs", json={"name": "x"}, headers=headers)
    ).json()["id"]
    await web.http.post(f"/api/v1/queues/work/jobs/{failed}/cancel", headers=headers)
    queued = (
        await web.http.post("/api/v1/queues/work/jobs", json={"name": "y"}, headers=headers)
    ).json()["id"]
    return {"queue": "work", "job_id": queued, "namespace": "default", "name": "jq"}


def fill(path: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        path = path.replace("{" + key + "}", value)
    return path


async def send(
    web: Web, method: str, template: str, values: dict[str, str], headers: dict[str, str]
) -> httpx.Response:
    path = fill(template, values)
    if template.endswith("/wait"):
        path += "?timeout=0.1"
    body = BODIES.get(template) if method in WRITE_METHODS else None
    return await web.http.request(method.upper(), path, json=body, headers=headers)


async def test_every_operation_needs_a_token_and_a_refusal_changes_nothing(web: Web) -> None:
    values = await seeded(web)
    ops = await operations(web)
    secured = [op for op in ops if op[2]]
    assert len(secured) >= 15, "every API operation declares the bearer scheme"
    assert {p for _, p, secure in ops if not secure} == {"/healthz", "/readyz"}
    before = await web.redis_digest()
    for method, template, _ in secured:
        for headers in (
            {},
            {"Authorization": "Bearer not-a-token-of-ours"},
            {"Authorization": f"Basic {web.tokens.write}"},
        ):
            answer = await send(web, method, template, values, headers)
            assert answer.status_code == 401, (method, template, headers, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer"
            assert answer.json()["error"] == "unauthorized"
    assert await web.redis_digest() == before


async def test_a_read_only_token_reads_and_may_not_write(web: Web) -> None:
    values = await seeded(web)
    before = await web.redis_digest()
    writes = [op for op in await operations(web) if op[0] in WRITE_METHODS]
    assert len(writes) >= 6
    for method, template, _ in writes:
        answer = await send(web, method, template, values, web.tokens.as_reader)
        assert answer.status_code == 403, (method, template, answer.text)
        assert answer.json() == {
            "error": "forbidden",
            "message": "token 'viewer' is read-only",
            "field": None,
        }
    assert await web.redis_digest() == before
    reads = (await web.http.get("/api/v1/queues/work/jobs", headers=web.tokens.as_reader)).json()
    assert len(reads["jobs"]) == 2
    assert (await web.http.get("/api/v1/whoami", headers=web.tokens.as_reader)).json() == {
        "label": "viewer",
        "role": "read",
    }


async def test_the_same_writes_work_with_a_write_token(web: Web) -> None:
    """The refusals above are about the token, not about requests that could not work."""
    values = await seeded(web)
    for template in ("/api/v1/queues/{queue}/jobs", "/api/v1/queues/{queue}/jobs/{job_id}/cancel"):
        answer = await send(web, "post", template, values, web.tokens.as_writer)
        assert answer.status_code in (200, 201), (template, answer.text)


async def test_a_body_over_the_limit_is_refused_before_anything_is_written(web: Web) -> None:
    before = await web.redis_digest()
    big = {"name": "echo", "payload": "x" * 300_000}  # the fixture's limit is 256 KiB
    answer = await web.http.post("/api/v1/queues/work/jobs", json=big, headers=web.tokens.as_writer)
    assert answer.status_code == 413
    assert answer.json()["error"] == "too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"name": "echo", "payload": "'
        for _ in range(40):
            yield b"y" * 10_000
        yield b'"}'

    streamed = await web.http.post(
        "/api/v1/queues/work/jobs",
        content=chunks(),
        headers={**web.tokens.as_writer, "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413
    assert await web.redis_digest() == before


async def test_writes_a_browser_marks_cross_site_are_refused(web: Web) -> None:
    before = await web.redis_digest()
    body = {"name": "echo"}
    for extra in (
        {"Origin": "http://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "null"},
    ):
        answer = await web.http.post(
            "/api/v1/queues/work/jobs", json=body, headers={**web.tokens.as_writer, **extra}
        )
        assert answer.status_code == 403, extra
        assert answer.json()["message"].startswith("cross-site write refused")
    # An HTML form of another site: no token (no cookies exist), a form content type.
    form = await web.http.post(
        "/api/v1/queues/work/jobs",
        content=b"name=echo",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Sec-Fetch-Site": "same-site",
        },
    )
    assert form.status_code == 401
    assert await web.redis_digest() == before
    same_origin = await web.http.post(
        "/api/v1/queues/work/jobs",
        json=body,
        headers={**web.tokens.as_writer, "Origin": web.url, "Sec-Fetch-Site": "same-origin"},
    )
    assert same_origin.status_code == 201


async def test_no_cookies_no_cors_and_a_strict_content_security_policy(web: Web) -> None:
    page = await web.http.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    preflight = await web.http.options(
        "/api/v1/queues/work/jobs",
        headers={
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    for answer in (
        page,
        preflight,
        await web.http.get("/api/v1/queues", headers=web.tokens.as_reader),
    ):
        assert "set-cookie" not in answer.headers
        assert not any(h.startswith("access-control-allow") for h in answer.headers)
    api = await web.http.get("/api/v1/queues", headers=web.tokens.as_reader)
    assert api.headers["cache-control"] == "no-store"
    for asset in ("/static/dashboard.js", "/static/dashboard.css"):
        text = (await web.http.get(asset)).text
        # the SVG namespace is a name, not something fetched
        elsewhere = re.findall(r"https?://(?!www\.w3\.org/2000/svg\b)[^\s\"'`]+", text)
        assert elsewhere == [], f"{asset} refers to {elsewhere}"


async def test_probes_answer_without_a_token_and_say_nothing_else(web: Web) -> None:
    assert (await web.http.get("/healthz")).json() == {"status": "ok"}
    assert (await web.http.get("/readyz")).json() == {"status": "ok"}
    assert (await web.http.get("/docs")).status_code == 404  # no Swagger UI from a CDN
