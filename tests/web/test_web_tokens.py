"""Tokens from a Secret-like directory (pure: files only) and the JobQueue status as shown."""

from __future__ import annotations

import types
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from jobqueue.cli import cli
from jobqueue_web import auth
from jobqueue_web.auth import Role, TokenError, TokenSet
from jobqueue_web.kube import scale_event_of, view_of

GOOD = "0123456789abcdef0123"


def secret(tmp_path: Path, **keys: str) -> Path:
    path = tmp_path / "secret"
    path.mkdir()
    for key, value in keys.items():
        (path / key.replace("__", ".")).write_text(value)
    (path / "..data").mkdir()  # what a mounted Secret also holds
    return path


def test_keys_name_the_role_and_label(tmp_path: Path) -> None:
    tokens = TokenSet.from_path(secret(tmp_path, write=GOOD + "w", read__grafana=GOOD + "r"))
    write = tokens.access(GOOD + "w")
    read = tokens.access(GOOD + "r")
    assert write is not None and (write.label, write.role) == ("write", Role.WRITE)
    assert read is not None and (read.label, read.role) == ("grafana", Role.READ)
    assert tokens.access(GOOD) is None
    assert tokens.access(None) is None


def test_anonymous_requests_may_only_read_when_allowed(tmp_path: Path) -> None:
    tokens = TokenSet.from_path(secret(tmp_path, write=GOOD), anonymous_read=True)
    anonymous = tokens.access(None)
    assert anonymous is not None and anonymous.role is Role.READ and not anonymous.may_write


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"admin": GOOD}, "token key 'admin' is not named read[.LABEL] or write[.LABEL]"),
        ({"write": "short"}, "token 'write' must be at least 16 characters without spaces"),
        ({"read": "has a space in it ok"}, "must be at least 16 characters without spaces"),
        ({}, "no tokens in"),
    ],
)
def test_a_bad_secret_is_refused_with_one_line_naming_the_key(
    tmp_path: Path, keys: dict[str, str], message: str
) -> None:
    with pytest.raises(TokenError, match=message.replace("[", r"\[").replace("]", r"\]")):
        TokenSet.from_path(secret(tmp_path, **keys))


def test_a_rotated_secret_takes_effect_without_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = secret(tmp_path, write=GOOD + "old")
    tokens = TokenSet.from_path(path)
    (path / "write").write_text(GOOD + "new-and-longer")
    clock = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: clock[0])
    tokens._checked_at = clock[0]
    assert tokens.access(GOOD + "new-and-longer") is None  # not checked again yet
    clock[0] += auth.RELOAD_SECONDS + 1
    assert tokens.access(GOOD + "new-and-longer") is not None
    assert tokens.access(GOOD + "old") is None


def test_jobq_dashboard_refuses_a_bad_token_secret_with_exit_2(tmp_path: Path) -> None:
    path = secret(tmp_path, owner=GOOD)
    result = CliRunner().invoke(cli, ["dashboard", "--tokens", str(path)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "jobq: error: --tokens: token key 'owner' is not named read[.LABEL] or write[.LABEL]"
    ]


def test_a_jobqueue_status_as_the_dashboard_shows_it() -> None:
    obj = {
        "metadata": {"namespace": "shop", "name": "emails"},
        "spec": {"queue": "mail", "redis": {"url": "redis://r:6379/0"}},
        "status": {
            "desiredReplicas": 4,
            "replicas": 3,
            "readyReplicas": 2,
            "workers": 2,
            "backlogTotal": 40,
            "oldestWaitSeconds": 12.5,
            "failureRatio": 0.1,
            "lastScaleTime": "2026-12-01T10:00:00Z",
            "lastScaleReason": "Backlog",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Scaled",
                    "message": "ok",
                    "lastTransitionTime": "2026-12-01T09:00:00Z",
                },
                "not a condition",
            ],
        },
    }
    view = view_of(obj)
    assert (view.namespace, view.name, view.queue, view.source) == (
        "shop",
        "emails",
        "mail",
        "jobqueue",
    )
    assert (view.desired_replicas, view.replicas, view.ready_replicas) == (4, 3, 2)
    assert [c.type for c in view.conditions] == ["Ready"]
    bare = view_of({"metadata": {"namespace": "a", "name": "b"}, "status": {"replicas": "3"}})
    assert bare.queue == "b" and bare.replicas is None and bare.conditions == []


def test_scale_events_are_read_from_the_operators_messages() -> None:
    at = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    event = types.SimpleNamespace(
        reason="ScaledUp",
        message="1 -> 6 (Backlog): 120 jobs",
        last_timestamp=at,
        event_time=None,
        first_timestamp=None,
    )
    scale = scale_event_of(event)
    assert scale is not None
    assert (scale.at, scale.from_replicas, scale.to_replicas) == (at.timestamp(), 1, 6)
    other = types.SimpleNamespace(reason="Ready", message="", last_timestamp=at)
    assert scale_event_of(other) is None


def test_tokens_from_environment_variables_with_a_prefix() -> None:
    environ = {"JOBQ_TOKEN_write": GOOD + "w", "JOBQ_TOKEN_read.ci": GOOD + "r", "HOME": "/"}
    tokens = TokenSet.from_env("JOBQ_TOKEN_", environ)
    read = tokens.access(GOOD + "r")
    assert read is not None and (read.label, read.role) == ("ci", Role.READ)
    with pytest.raises(TokenError, match="no environment variables JOBQ_X_read"):
        TokenSet.from_env("JOBQ_X_", environ)
