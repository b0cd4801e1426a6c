"""Routes of queues and jobs: /api/v1/queues/..."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query
from jobqueue.client import AsyncQueue, CancelResult
from jobqueue.client import list_queues as names_of
from jobqueue.errors import InvalidState, JobNotFound
from jobqueue.models import Job, JobSpec, JobState, QueueStats
from jobqueue.stats import MAX_WINDOW_SECONDS, StatsReader, read_many

from jobqueue_web.errors import ApiProblem, error_responses
from jobqueue_web.schemas import (
    MAX_MERGED_DEPTH,
    MAX_PAGE,
    MAX_SEARCH_WINDOW,
    BulkSubmitRequest,
    BulkSubmitResponse,
    CancelResponse,
    CleanupRequest,
    CleanupResponse,
    JobDetail,
    JobPage,
    QueueDetail,
    RetryAllResponse,
    RetryResponse,
    SubmitResponse,
    WaitResponse,
    WorkerView,
    page_of,
)
from jobqueue_web.state import QueueDep, ReadAccess, StateDep, WriteAccess
from jobqueue_web.timeline import job_timeline

__all__ = ["router"]

READ = error_responses(400, 401, 503)
WRITE = error_responses(400, 401, 403, 413, 503)
MAX_WAIT_SECONDS = 60.0
DEFAULT_SEARCH_WINDOW = 1000

router = APIRouter(prefix="/api/v1/queues", tags=["queues"])


def _job_id(job_id: str = Path(min_length=1, max_length=200, description="The job's id.")) -> str:
    if not job_id.isprintable():
        raise ApiProblem(400, "invalid_request", "invalid job_id: not printable", "job_id")
    return job_id


JOB_ID = Annotated[str, Depends(_job_id)]


@router.get("", response_model=list[QueueStats], responses=READ, summary="Every queue's stats")
async def list_queues(*, state: StateDep, _: ReadAccess) -> list[QueueStats]:
    """Every queue known on this Redis with its statistics (one round trip)."""
    names = await names_of(state.redis)
    rows = await read_many([StatsReader(state.redis, n) for n in names]) if names else []
    return [row for row in rows if not isinstance(row, Exception)]


@router.get("/{queue}", response_model=QueueDetail, responses=READ, summary="A queue")
async def queue_detail(
    *,
    window: Annotated[int, Query(ge=1, le=MAX_WINDOW_SECONDS)] = 60,
    q: QueueDep,
    state: StateDep,
    _: ReadAccess,
) -> QueueDetail:
    """Statistics (the failure ratio over ``window`` seconds), the samples this server took
    of them, and the JobQueues that serve the queue (not a foreign system's JobQueue that
    happens to read a queue of the same name)."""
    stats = await q.stats(window)
    scaling = state.scaling.views() if state.scaling is not None else []
    return QueueDetail(
        stats=stats,
        history=list(state.observer.history.get(q.name, ())),
        jobqueues=[v for v in scaling if v.queue == q.name and not v.foreign],
    )


def _matches(job: Job, needle: str) -> bool:
    fields = (job.id, job.name, job.dedup_key, job.error, job.worker, job.progress_message)
    if any(needle in (f or "").lower() for f in fields):
        return True
    return needle in json.dumps(job.payload, default=str).lower()


@router.get("/{queue}/jobs", response_model=JobPage, responses=READ, summary="List jobs")
async def list_jobs(
    *,
    state: Annotated[JobState | None, Query(description="Only this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    search: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="A job id, or text in the name, "
            "id, dedup key, error, worker or payload of the newest jobs.",
        ),
    ] = None,
    window: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_SEARCH_WINDOW,
            description="With search: how many of the newest jobs to look at.",
        ),
    ] = DEFAULT_SEARCH_WINDOW,
    q: QueueDep,
    _: ReadAccess,
) -> JobPage:
    """Jobs newest first, one page at a time (paged reads: no scan of the queue). Without
    ``state``, every state's newest jobs merged by creation time (offset + limit <= 10000)."""
    if search is not None:
        return await _search(q, state, search, limit, offset, window)
    if state is None and offset + limit > MAX_MERGED_DEPTH:
        raise ApiProblem(
            400,
            "invalid_request",
            f"invalid offset: without a state, offset + "
            f"limit must be <= {MAX_MERGED_DEPTH}; give a state",
            "offset",
        )
    jobs = await q.list(state, limit=limit + 1, offset=offset)
    total = None
    if state is not None:
        total = int(getattr(await q.stats(), state.value))
    return page_of(
        jobs[:limit], state=state, limit=limit, offset=offset, total=total, more=len(jobs) > limit
    )


async def _search(
    q: AsyncQueue, state: JobState | None, search: str, limit: int, offset: int, window: int
) -> JobPage:
    if search.isprintable() and len(search) <= 200:
        try:
            job = await q.get(search)
        except JobNotFound:
            pass
        else:
            found = [job] if state is None or job.state is state else []
            return page_of(
                found[offset : offset + limit],
                state=state,
                limit=limit,
                offset=offset,
                total=len(found),
                more=False,
                search=search,
                searched=1,
            )
    jobs = await q.list(state, limit=window)
    needle = search.lower()
    hits = [job for job in jobs if _matches(job, needle)]
    return page_of(
        hits[offset : offset + limit],
        state=state,
        limit=limit,
        offset=offset,
        total=len(hits),
        more=offset + limit < len(hits),
        search=search,
        searched=len(jobs),
    )


@router.post(
    "/{queue}/jobs",
    status_code=201,
    response_model=SubmitResponse,
    responses=WRITE,
    summary="Submit a job",
)
async def submit(
    *,
    spec: Annotated[JobSpec, Body()],
    q: QueueDep,
    _: WriteAccess,
) -> SubmitResponse:
    """Submit one job (the options and bounds of ``jobq submit``). With a ``dedup_key`` held
    by an unfinished job, that job's id is returned and nothing new is queued."""
    return SubmitResponse(id=await q.submit_spec(spec), queue=q.name)


@router.post(
    "/{queue}/jobs/bulk",
    status_code=201,
    response_model=BulkSubmitResponse,
    responses=WRITE,
    summary="Submit many jobs",
)
async def submit_many(
    *, request: BulkSubmitRequest, q: QueueDep, _: WriteAccess
) -> BulkSubmitResponse:
    """Submit up to 1000 jobs in pipelined round trips; all are checked first, and one
    invalid job (named ``jobs[i].field``) refuses them all."""
    return BulkSubmitResponse(ids=await q.submit_many(request.jobs), queue=q.name)


@router.get(
    "/{queue}/jobs/{job_id}",
    response_model=JobDetail,
    responses=error_responses(400, 401, 404, 409, 503),
    summary="A job and its timeline",
)
async def job_detail(*, job_id: JOB_ID, q: QueueDep, _: ReadAccess) -> JobDetail:
    job = await q.get(job_id)
    timeline, complete = await job_timeline(q.protocol, job)
    return JobDetail(job=job, timeline=timeline, timeline_complete=complete)


@router.get(
    "/{queue}/jobs/{job_id}/wait",
    response_model=WaitResponse,
    responses=error_responses(400, 401, 404, 409, 429, 503),
    summary="Wait for a job to finish (long poll)",
)
async def wait(
    *,
    job_id: JOB_ID,
    timeout: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS, allow_inf_nan=False)] = 30.0,  # noqa: ASYNC109
    q: QueueDep,
    state: StateDep,
    _: ReadAccess,
) -> WaitResponse:
    """Answers when the job is finished, or after ``timeout`` seconds with ``finished``
    false (ask again). Uses the queue's event stream, not polling."""
    if state.waits.locked():
        raise ApiProblem(
            429, "too_many_requests", f"{state.max_waits} waits are open already; try again"
        )
    async with state.waits:
        try:
            job = await q.wait(job_id, timeout)
        except TimeoutError:
            return WaitResponse(finished=False, job=await q.get(job_id))
    return WaitResponse(finished=True, job=job)


@router.post(
    "/{queue}/jobs/{job_id}/cancel",
    response_model=CancelResponse,
    responses=error_responses(400, 401, 403, 404, 409, 413, 503),
    summary="Cancel a job",
)
async def cancel(*, job_id: JOB_ID, q: QueueDep, _: WriteAccess) -> CancelResponse:
    """A queued or delayed job is cancelled at once; an active one is asked to stop."""
    result = await q.cancel(job_id)
    if result is CancelResult.ALREADY_FINISHED:
        job = await q.get(job_id)
        raise InvalidState(job_id, job.state.value, "cancel")
    return CancelResponse(id=job_id, result=result.value)


@router.post(
    "/{queue}/jobs/{job_id}/retry",
    response_model=RetryResponse,
    responses=error_responses(400, 401, 403, 404, 409, 413, 503),
    summary="Retry a failed or cancelled job",
)
async def retry(*, job_id: JOB_ID, q: QueueDep, _: WriteAccess) -> RetryResponse:
    """Run it again with a fresh set of attempts (refused while another unfinished job
    holds its dedup key)."""
    await q.retry(job_id)
    return RetryResponse(id=job_id, state=(await q.get(job_id)).state)


@router.post(
    "/{queue}/retry-failed",
    response_model=RetryAllResponse,
    responses=WRITE,
    summary="Retry every failed job",
)
async def retry_all(*, q: QueueDep, _: WriteAccess) -> RetryAllResponse:
    result = await q.retry_all()
    return RetryAllResponse(retried=result.retried, skipped=result.skipped)


@router.post(
    "/{queue}/cleanup",
    response_model=CleanupResponse,
    responses=WRITE,
    summary="Delete old finished jobs",
)
async def cleanup(*, request: CleanupRequest, q: QueueDep, _: WriteAccess) -> CleanupResponse:
    return CleanupResponse(removed=await q.cleanup(request.older_than_seconds, request.state))


@router.get(
    "/{queue}/workers",
    response_model=list[WorkerView],
    responses=READ,
    summary="Workers and the jobs they hold",
)
async def workers(*, q: QueueDep, _: ReadAccess) -> list[WorkerView]:
    """Live workers of the queue (its heartbeat registry) with the active jobs each holds."""
    stats = await q.stats()
    active = await q.list(JobState.ACTIVE, limit=MAX_PAGE) if stats.active else []
    return [
        WorkerView(worker=w, jobs=[j for j in active if j.worker == w.id]) for w in stats.workers
    ]
