"""Pure tests of submit options, backoff schedules and job decoding (no Redis)."""

from __future__ import annotations

import random

import pytest
from jobqueue.errors import InvalidJob
from jobqueue.models import Backoff, Job, JobState, build_spec, parse_backoff


def test_fixed_backoff_is_constant_within_jitter() -> None:
    b = parse_backoff("fixed:10")
    rng = random.Random(1)
    for attempt in range(1, 8):
        assert b.base_delay(attempt) == 10
        assert 9.0 <= b.delay(attempt, rng) <= 11.0


def test_exponential_backoff_doubles_then_caps() -> None:
    b = parse_backoff("exponential:2,cap=30,jitter=0")
    assert [b.delay(a) for a in range(1, 7)] == [2, 4, 8, 16, 30, 30]


def test_exponential_backoff_jitter_bounds_and_cap() -> None:
    b = parse_backoff("exponential:1,cap=100,jitter=0.5")
    rng = random.Random(7)
    for attempt in range(1, 12):
        base = min(100.0, 2.0 ** (attempt - 1))
        samples = [b.delay(attempt, rng) for _ in range(200)]
        assert min(samples) >= base * 0.5
        assert max(samples) <= min(100.0, base * 1.5)
    # jitter really spreads the delays
    assert len({round(b.delay(3, rng), 6) for _ in range(20)}) > 1


def test_huge_attempt_numbers_stay_at_the_cap() -> None:
    assert parse_backoff("exponential:1,cap=60,jitter=0").delay(10_000) == 60


@pytest.mark.parametrize(
    "text",
    ["", "linear:3", "fixed", "fixed:-1", "exponential:2,cap=1", "fixed:1,jitter=1", "fixed:1,x=2"],
)
def test_bad_backoff_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidJob) as err:
        parse_backoff(text)
    assert err.value.field == "backoff"
    assert "\n" not in str(err.value)


def test_backoff_round_trips_through_str() -> None:
    b = Backoff("exponential", 1.5, cap=90, jitter=0.2)
    assert parse_backoff(str(b)) == b


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"priority": 10}, "priority"),
        ({"priority": -1}, "priority"),
        ({"priority": True}, "priority"),
        ({"priority": "3"}, "priority"),
        ({"delay": -1}, "delay"),
        ({"delay": float("inf")}, "delay"),
        ({"attempts": 0}, "attempts"),
        ({"timeout": 0}, "timeout"),
        ({"backoff": "soon"}, "backoff"),
        ({"dedup_key": ""}, "dedup_key"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_submit_options_name_the_field(options: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidJob) as err:
        build_spec("job", None, **options)
    assert err.value.field == field
    assert field in str(err.value)


def test_blank_name_is_refused() -> None:
    with pytest.raises(InvalidJob) as err:
        build_spec("  ")
    assert err.value.field == "name"


def test_payload_must_be_json_and_within_the_limit() -> None:
    with pytest.raises(InvalidJob, match="payload"):
        build_spec("job", {"x": {1, 2}}).encoded_payload()
    with pytest.raises(InvalidJob, match="over the limit"):
        build_spec("job", "x" * 2000).encoded_payload(max_bytes=1000)
    assert build_spec("job", {"a": [1, 2]}).encoded_payload() == '{"a":[1,2]}'


def test_defaults() -> None:
    spec = build_spec("job")
    assert (spec.priority, spec.delay, spec.attempts, spec.timeout) == (5, 0.0, 3, None)
    assert spec.backoff_policy.kind == "exponential"


def test_job_from_hash_decodes_fields() -> None:
    job = Job.from_hash(
        "q",
        {
            "id": "abc",
            "name": "n",
            "state": "completed",
            "priority": "2",
            "payload": '{"a":1}',
            "attempts": "1",
            "max_attempts": "3",
            "result": "[1,2]",
            "created_at": "1800000000000",
            "finished_at": "1800000001500",
            "timeout": "2.5",
            "cancel": "1",
        },
    )
    assert job.state is JobState.COMPLETED and job.finished
    assert job.payload == {"a": 1} and job.result == [1, 2]
    assert job.finished_at is not None and job.created_at is not None
    assert (job.finished_at - job.created_at).total_seconds() == 1.5
    assert job.timeout == 2.5 and job.cancel_requested
    data = job.to_json_dict()
    assert data["started_at"] is None and data["created_at"].startswith("2027-01-15T")
