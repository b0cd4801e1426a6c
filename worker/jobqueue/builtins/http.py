"""``http.request``: call an HTTP endpoint; a non-2xx answer fails the attempt.

Payload: ``{"method": "POST", "url": "https://...", "headers": {...}, "params": {...},
"json": <any> | "body": "<text>", "timeout": 30, "follow_redirects": false}``.
Result: ``{"status": 200, "headers": {<a few useful ones>}, "body": <JSON if the answer is
JSON, else text>}``; bodies beyond 1 MiB are cut and flagged with ``"truncated": true``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jobqueue.registry import task
from jobqueue.runtime.context import JobContext
from jobqueue.runtime.payloads import parse_payload

__all__ = ["HttpStatusError", "RequestPayload", "request"]

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


class HttpStatusError(RuntimeError):
    """The endpoint answered with a status outside 2xx."""


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


def _decode_body(response: httpx.Response) -> tuple[Any, bool]:
    raw = response.content
    truncated = len(raw) > MAX_BODY_BYTES
    if truncated:
        raw = raw[:MAX_BODY_BYTES]
    content_type = response.headers.get("content-type", "")
    if not truncated and "json" in content_type:
        try:
            return json.loads(raw), False
        except ValueError:
            pass  # claims JSON but isn't: keep the text
    return raw.decode(response.encoding or "utf-8", errors="replace"), truncated


@task("http.request")
async def request(ctx: JobContext, payload: Any) -> dict[str, Any]:
    args = parse_payload(RequestPayload, payload, "http.request")
    kwargs: dict[str, Any] = {"headers": args.headers, "params": args.params}
    if "json_body" in args.model_fields_set:
        kwargs["json"] = args.json_body
    elif args.body is not None:
        kwargs["content"] = args.body.encode()
    async with httpx.AsyncClient(
        timeout=args.timeout, follow_redirects=args.follow_redirects
    ) as client:
        response = await client.request(args.method, args.url, **kwargs)
    body, truncated = _decode_body(response)
    if not response.is_success:
        excerpt = body if isinstance(body, str) else json.dumps(body)
        raise HttpStatusError(
            f"{args.method} {args.url} answered {response.status_code} "
            f"{response.reason_phrase}: {excerpt[:200]}"
        )
    result: dict[str, Any] = {
        "status": response.status_code,
        "headers": {k: response.headers[k] for k in _KEPT_HEADERS if k in response.headers},
        "body": body,
    }
    if truncated:
        result["truncated"] = True
    return result
