"""Unit tests of the watch-fed Deployment cache the poll loops read instead of GETting."""

from __future__ import annotations

from jobqueue_operator.deployments import DeploymentCache, DeploymentView, view_of


def _body(replicas: int | None, ready: int | None, version: str | None) -> dict[str, object]:
    return {
        "metadata": {"name": "q-worker", "resourceVersion": version},
        "spec": {"replicas": replicas},
        "status": {"replicas": 3, "readyReplicas": ready},
    }


def test_view_reads_counts_and_tolerates_missing_fields() -> None:
    assert view_of(_body(4, 2, "17")) == DeploymentView(4, 3, 2, 17)
    assert view_of({}) == DeploymentView(0, 0, 0, None)
    assert view_of(_body(None, None, "not-a-number")).resource_version is None


def test_older_watch_events_do_not_overwrite_newer_views() -> None:
    cache = DeploymentCache()
    cache.put("ns", "q-worker", view_of(_body(1, 1, "10")))
    cache.scaled("ns", "q-worker", 5, "20")  # our own scale write
    cache.put("ns", "q-worker", view_of(_body(1, 1, "15")))  # a late event from before it
    held = cache.get("ns", "q-worker")
    assert held is not None and (held.replicas, held.resource_version) == (5, 20)
    cache.put("ns", "q-worker", view_of(_body(5, 4, "21")))  # the watch catches up
    held = cache.get("ns", "q-worker")
    assert held is not None and (held.replicas, held.ready) == (5, 4)


def test_unparsable_versions_let_the_newcomer_win_and_forget_removes() -> None:
    cache = DeploymentCache()
    cache.put("ns", "a", view_of(_body(2, 0, "30")))
    cache.put("ns", "a", view_of(_body(3, 0, None)))
    assert (cache.get("ns", "a") or DeploymentView(0, 0, 0, None)).replicas == 3
    cache.scaled("ns", "missing", 7, "99")  # nothing held: nothing invented
    assert cache.get("ns", "missing") is None and len(cache) == 1
    cache.forget("ns", "a")
    assert cache.get("ns", "a") is None and len(cache) == 0
