"""The HTTP API against a real redis-server, through a real uvicorn on a loopback port."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from jobqueue.client import AsyncQueue
from jobqueue.models import JobState
from jobqueue.registry import Registry
from waits import wait_until
from web_helpers import Web

pytest_plugins = ["web_fixtures", "worker_fixtures"]
pytestmark = pytest.mark.redis

Q = "/api/v1/queues/work"


def echo_registry() -> Registry:
    registry = Registry()

    async def echo(ctx: Any, payload: Any) -> Any:
        return payload

    async def fail(ctx: Any, payload: Any) -> Any:
        raise RuntimeError("boom on purpose")

    registry.register("echo", echo)
    registry.register("fail", fail)
    return registry


async def submit(web: Web, body: dict[str, Any], queue: str = "work") -> str:
    answer = await web.http.post(
        f"/api/v1/queues/{queue}/jobs", json=body, headers=web.tokens.as_writer
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def test_submit_then_read_the_job_and_its_timeline(web: Web) -> None:
    job_id = await submit(web, {"name": "echo", "payload": {"n": 1}, "priority": 2})
    answer = await web.http.get(f"{Q}/jobs/{job_id}", headers=web.tokens.as_reader)
    assert answer.status_code == 200
    detail = answer.json()
    assert detail["job"]["state"] == "queued"
    assert detail["job"]["payload"] == {"n": 1}
    assert detail["job"]["priority"] == 2
    assert [e["event"] for e in detail["timeline"]] == ["created", "queued"]
    assert detail["timeline_complete"] is True


async def test_bad_submit_is_a_400_naming_the_field_and_writes_nothing(web: Web) -> None:
    before = await web.redis_digest()
    cases = [
        ({"name": "echo", "priority": 10}, "priority"),
        ({"name": "echo", "attempts": 0}, "attempts"),
        ({"name": "echo", "delay": -1}, "delay"),
        ({"name": "echo", "backoff": "linear:2"}, "backoff"),
        ({"name": "echo", "colour": "red"}, "colour"),
        ({"payload": 1}, "name"),
        ({"name": "echo", "priority": 5.5}, "priority"),
    ]
    for body, field in cases:
        answer = await web.http.post(f"{Q}/jobs", json=body, headers=web.tokens.as_writer)
        assert answer.status_code == 400, (body, answer.text)
        error = answer.json()
        assert error["error"] == "invalid_request"
        assert error["field"] == field
        assert error["message"].startswith(f"invalid {field}:")
        assert "\n" not in error["message"]
    answer = await web.http.post(
        f"{Q}/jobs",
        content=b"{not json",
        headers={**web.tokens.as_writer, "Content-Type": "application/json"},
    )
    assert answer.status_code == 400 and answer.json()["field"] == "body"
    answer = await web.http.post(
        "/api/v1/queues/a%7Bb/jobs", json={"name": "echo"}, headers=web.tokens.as_writer
    )
    assert answer.status_code == 400 and answer.json()["field"] == "queue"
    assert await web.redis_digest() == before


async def test_bulk_submit_is_all_or_nothing(web: Web) -> None:
    jobs = [{"name": "echo", "payload": i} for i in range(5)]
    jobs[3]["priority"] = 99
    answer = await web.http.post(
        f"{Q}/jobs/bulk", json={"jobs": jobs}, headers=web.tokens.as_writer
    )
    assert answer.status_code == 400
    assert answer.json()["field"] == "jobs[3].priority"
    assert await web.redis.dbsize() == 0
    del jobs[3]["priority"]
    answer = await web.http.post(
        f"{Q}/jobs/bulk", json={"jobs": jobs}, headers=web.tokens.as_writer
    )
    assert answer.status_code == 201
    assert len(answer.json()["ids"]) == 5
    page = (await web.http.get(f"{Q}/jobs?state=queued", headers=web.tokens.as_reader)).json()
    assert page["total"] == 5


async def test_list_pages_by_state_newest_first(web: Web) -> None:
    ids = [await submit(web, {"name": "echo", "payload": i}) for i in range(7)]
    first = (
        await web.http.get(f"{Q}/jobs?state=queued&limit=3", headers=web.tokens.as_reader)
    ).json()
    assert [j["id"] for j in first["jobs"]] == ids[::-1][:3]
    assert (first["total"], first["next_offset"]) == (7, 3)
    last = (
        await web.http.get(f"{Q}/jobs?state=queued&limit=3&offset=6", headers=web.tokens.as_reader)
    ).json()
    assert [j["id"] for j in last["jobs"]] == [ids[0]]
    assert last["next_offset"] is None
    merged = (await web.http.get(f"{Q}/jobs?limit=50", headers=web.tokens.as_reader)).json()
    assert len(merged["jobs"]) == 7 and merged["total"] is None
    too_deep = await web.http.get(f"{Q}/jobs?offset=9990&limit=20", headers=web.tokens.as_reader)
    assert too_deep.status_code == 400 and too_deep.json()["field"] == "offset"
    bad_limit = await web.http.get(f"{Q}/jobs?limit=0", headers=web.tokens.as_reader)
    assert bad_limit.status_code == 400 and bad_limit.json()["field"] == "limit"
    bad_state = await web.http.get(f"{Q}/jobs?state=lost", headers=web.tokens.as_reader)
    assert bad_state.status_code == 400 and bad_state.json()["field"] == "state"


async def test_search_finds_by_id_and_by_text_in_a_bounded_window(web: Web) -> None:
    target = await submit(web, {"name": "echo", "payload": {"customer": "ACME-42"}})
    for i in range(5):
        await submit(web, {"name": "echo", "payload": {"customer": f"other-{i}"}})
    by_id = (await web.http.get(f"{Q}/jobs?search={target}", headers=web.tokens.as_reader)).json()
    assert [j["id"] for j in by_id["jobs"]] == [target]
    by_text = (
        await web.http.get(f"{Q}/jobs?search=acme-42&window=100", headers=web.tokens.as_reader)
    ).json()
    assert [j["id"] for j in by_text["jobs"]] == [target]
    assert by_text["searched"] == 6
    narrow = (
        await web.http.get(
            f"{Q}/jobs?search=acme-42&window=2&state=queued", headers=web.tokens.as_reader
        )
    ).json()
    assert narrow["jobs"] == [] and narrow["searched"] == 2  # the target is the oldest


async def test_wait_long_polls_until_the_job_finishes(web: Web, start_worker: Any) -> None:
    job_id = await submit(web, {"name": "echo", "payload": {"x": 1}})
    early = await web.http.get(f"{Q}/jobs/{job_id}/wait?timeout=0.2", headers=web.tokens.as_reader)
    assert early.status_code == 200
    assert early.json()["finished"] is False and early.json()["job"]["state"] == "queued"
    waiting = asyncio.create_task(
        web.http.get(f"{Q}/jobs/{job_id}/wait?timeout=30", headers=web.tokens.as_reader)
    )
    await start_worker(echo_registry())
    answer = await waiting
    assert answer.json()["finished"] is True
    assert answer.json()["job"]["result"] == {"x": 1}
    missing = await web.http.get(f"{Q}/jobs/nope/wait?timeout=1", headers=web.tokens.as_reader)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    too_long = await web.http.get(
        f"{Q}/jobs/{job_id}/wait?timeout=61", headers=web.tokens.as_reader
    )
    assert too_long.status_code == 400 and too_long.json()["field"] == "timeout"


async def test_cancel_a_queued_job_then_refuse_a_second_cancel(web: Web) -> None:
    job_id = await submit(web, {"name": "echo"})
    answer = await web.http.post(f"{Q}/jobs/{job_id}/cancel", headers=web.tokens.as_writer)
    assert answer.status_code == 200 and answer.json()["result"] == "cancelled"
    again = await web.http.post(f"{Q}/jobs/{job_id}/cancel", headers=web.tokens.as_writer)
    assert again.status_code == 409
    assert again.json() == {
        "error": "invalid_state",
        "field": None,
        "message": f"cannot cancel job {job_id!r}: it is cancelled",
    }
    unknown = await web.http.post(f"{Q}/jobs/unknown/cancel", headers=web.tokens.as_writer)
    assert unknown.status_code == 404
    assert unknown.json()["message"] == "job 'unknown' not found in queue 'work'"


async def test_retry_one_and_all_failed_jobs(web: Web, start_worker: Any) -> None:
    failing = [await submit(web, {"name": "fail", "attempts": 1}) for _ in range(3)]
    done = await submit(web, {"name": "echo"})
    worker = await start_worker(echo_registry())

    async def settled() -> bool:
        stats = (await web.http.get(Q, headers=web.tokens.as_reader)).json()["stats"]
        return bool(stats["failed"] == 3 and stats["completed"] == 1)

    await wait_until(settled)
    await worker.stop()
    answer = await web.http.post(f"{Q}/jobs/{failing[0]}/retry", headers=web.tokens.as_writer)
    assert answer.status_code == 200 and answer.json() == {"id": failing[0], "state": "queued"}
    refused = await web.http.post(f"{Q}/jobs/{done}/retry", headers=web.tokens.as_writer)
    assert refused.status_code == 409 and refused.json()["error"] == "invalid_state"
    assert refused.json()["message"] == f"cannot retry job {done!r}: it is completed"
    rest = await web.http.post(f"{Q}/retry-failed", headers=web.tokens.as_writer)
    assert rest.json() == {"retried": 2, "skipped": 0}
    queued = (await web.http.get(f"{Q}/jobs?state=queued", headers=web.tokens.as_reader)).json()
    assert sorted(j["id"] for j in queued["jobs"]) == sorted(failing)


async def test_cleanup_removes_old_finished_jobs(web: Web) -> None:
    job_id = await submit(web, {"name": "echo"})
    await web.http.post(f"{Q}/jobs/{job_id}/cancel", headers=web.tokens.as_writer)
    bad = await web.http.post(
        f"{Q}/cleanup", json={"older_than_seconds": -1}, headers=web.tokens.as_writer
    )
    assert bad.status_code == 400 and bad.json()["field"] == "older_than_seconds"
    bad_state = await web.http.post(
        f"{Q}/cleanup",
        json={"older_than_seconds": 0, "state": "queued"},
        headers=web.tokens.as_writer,
    )
    assert bad_state.status_code == 400 and bad_state.json()["field"] == "state"
    answer = await web.http.post(
        f"{Q}/cleanup", json={"older_than_seconds": 0}, headers=web.tokens.as_writer
    )
    assert answer.json() == {"removed": 1}
    gone = await web.http.get(f"{Q}/jobs/{job_id}", headers=web.tokens.as_reader)
    assert gone.status_code == 404


async def test_stats_workers_and_the_jobs_they_hold(web: Web, start_worker: Any) -> None:
    registry = Registry()
    release = asyncio.Event()

    async def hold(ctx: Any, payload: Any) -> None:
        await release.wait()

    registry.register("hold", hold)
    job_id = await submit(web, {"name": "hold"})
    await start_worker(registry, worker_name="w-hold")

    async def held() -> bool:
        workers = (await web.http.get(f"{Q}/workers", headers=web.tokens.as_reader)).json()
        return bool(workers and [j["id"] for j in workers[0]["jobs"]] == [job_id])

    await wait_until(held)
    workers = (await web.http.get(f"{Q}/workers", headers=web.tokens.as_reader)).json()
    assert workers[0]["worker"]["name"] == "w-hold"
    queues = (await web.http.get("/api/v1/queues", headers=web.tokens.as_reader)).json()
    assert [(q["queue"], q["active"]) for q in queues] == [("work", 1)]
    release.set()


async def test_overview_samples_every_queue_for_the_sparklines(web: Web) -> None:
    await submit(web, {"name": "echo"}, queue="a")
    await submit(web, {"name": "echo"}, queue="b")

    async def sampled() -> bool:
        answer = (await web.http.get("/api/v1/overview", headers=web.tokens.as_reader)).json()
        return all(len(answer["history"].get(q, [])) >= 2 for q in ("a", "b"))

    await wait_until(sampled)
    overview = (await web.http.get("/api/v1/overview", headers=web.tokens.as_reader)).json()
    assert [q["queue"] for q in overview["queues"]] == ["a", "b"]
    assert overview["history"]["a"][-1]["backlog"] == 1
    assert overview["kubernetes"] == "off"


async def test_live_stream_sends_overviews_as_the_queue_changes(web: Web) -> None:
    seen: list[int] = []
    async with web.http.stream("GET", "/api/v1/live", headers=web.tokens.as_reader) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()
        submitted = False
        async with asyncio.timeout(20):
            async for line in lines:
                if not line.startswith("data:"):
                    continue
                overview = json.loads(line[5:])
                queued = {q["queue"]: q["queued"] for q in overview["queues"]}
                seen.append(queued.get("work", 0))
                if not submitted:
                    await submit(web, {"name": "echo"})
                    submitted = True
                elif queued.get("work") == 1:
                    break
    assert seen[-1] == 1


async def test_timeline_says_when_the_event_stream_no_longer_holds_the_start(web: Web) -> None:
    queue = AsyncQueue("work", web.redis_url)
    await queue.configure(events_maxlen=10)
    job_id = await submit(web, {"name": "echo"})
    for _ in range(300):  # one by one: an entry each (a submit_many call writes one)
        await queue.submit("echo", {})
    detail = (await web.http.get(f"{Q}/jobs/{job_id}", headers=web.tokens.as_reader)).json()
    assert detail["timeline_complete"] is False
    assert [e["event"] for e in detail["timeline"]] == ["created"]
    assert detail["job"]["state"] == JobState.QUEUED.value
    await queue.close()


async def test_the_timeline_reads_the_entry_a_batch_of_jobs_shares(web: Web) -> None:
    queue = AsyncQueue("work", web.redis_url)
    first, _ = await queue.submit_many([{"name": "echo"}, {"name": "echo"}])
    await queue.close()
    detail = (await web.http.get(f"{Q}/jobs/{first}", headers=web.tokens.as_reader)).json()
    assert [(e["event"], e["source"]) for e in detail["timeline"]] == [
        ("created", "record"),
        ("queued", "events"),
    ]
    assert detail["timeline_complete"] is True


async def test_a_submit_event_stamped_later_than_the_creation_still_makes_a_whole_timeline(
    web: Web,
) -> None:
    # The record's created_at and the submit's stream entry are read from the server's clock
    # at different moments; here the record's is 50 ms older, as on a loaded machine.
    queue = AsyncQueue("work", web.redis_url, clock=lambda: time.time() - 0.05)
    job_id = await queue.submit("echo", {})
    await queue.close()
    detail = (await web.http.get(f"{Q}/jobs/{job_id}", headers=web.tokens.as_reader)).json()
    assert [e["event"] for e in detail["timeline"]] == ["created", "queued"]
    assert detail["timeline_complete"] is True
