"""Foreign queues (spec.source.kind BullMQ, Celery, RQ, List, Stream) as the dashboard shows
them: read-only, from their JobQueue's status (pure: objects as the API server serves them)."""

from __future__ import annotations

from typing import Any

from jobqueue_web.kube import KubeSettings, ScalingWatch, view_of
from jobqueue_web.observe import Observer


def jobqueue(name: str, source: dict[str, Any] | None, **status: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"redis": {"url": "redis://r:6379/0"}}
    if source is not None:
        spec["source"] = source
    return {"metadata": {"namespace": "ai", "name": name}, "spec": spec, "status": status}


FLOWISE = jobqueue(
    "flowise",
    {"kind": "BullMQ", "queues": ["flowise-prediction", "flowise-upsertion"], "prefix": "bull"},
    queue="flowise-prediction,flowise-upsertion",
    backlogTotal=37,
    oldestWaitSeconds=4.5,
    scaleTarget="Deployment/flowise-worker",
    signals=["waiting", "inFlight", "delayed", "oldestWait", "outcomes"],
    desiredReplicas=3,
    replicas=2,
    readyReplicas=1,
)


def test_this_projects_queue_is_not_foreign_with_or_without_spec_source() -> None:
    # The CRD defaults spec.source to {kind: JobQueue}; objects from before it have none.
    for source in (None, {"kind": "JobQueue"}):
        view = view_of(jobqueue("emails", source, queue="emails"))
        assert (view.source, view.foreign, view.source_queues) == ("jobqueue", False, [])


def test_a_foreign_queue_is_named_by_its_kind_with_the_queues_it_reads() -> None:
    view = view_of(FLOWISE)
    assert (view.source, view.foreign) == ("BullMQ", True)
    assert view.source_queues == ["flowise-prediction", "flowise-upsertion"]
    assert view.scale_target == "Deployment/flowise-worker"
    assert view.signals == ["waiting", "inFlight", "delayed", "oldestWait", "outcomes"]
    assert (view.backlog_total, view.oldest_wait_seconds) == (37, 4.5)
    odd = view_of(jobqueue("x", {"kind": "RQ", "queues": ["a", 3]}, signals="waiting"))
    assert (odd.source_queues, odd.signals) == (["a"], None)


async def test_the_overview_carries_each_foreign_queues_figures_over_time() -> None:
    watch = ScalingWatch(KubeSettings())
    status = FLOWISE["status"]
    answers = iter(
        [
            [FLOWISE, jobqueue("emails", {"kind": "JobQueue"}, backlogTotal=5)],
            [{**FLOWISE, "status": {**status, "backlogTotal": 12, "oldestWaitSeconds": 1.0}}],
        ]
    )
    watch._list_jobqueues = lambda: next(answers)  # type: ignore[method-assign]
    watch._list_scale_events = list  # type: ignore[method-assign]
    await watch.poll()
    await watch.poll()
    assert watch.error is None
    history = watch.foreign_history(points=10)
    assert list(history) == ["ai/flowise"]  # this project's queues have their own history
    assert [(s.backlog, s.oldest_wait_seconds) for s in history["ai/flowise"]] == [
        (37, 4.5),
        (12, 1.0),
    ]
    overview = Observer(redis=None, scaling=watch).overview()  # type: ignore[arg-type]
    assert [s.backlog for s in overview.foreign_history["ai/flowise"]] == [37, 12]
    assert [v.foreign for v in overview.jobqueues] == [True]
