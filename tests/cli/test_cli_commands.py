"""Every ``jobq`` command against a real redis-server, including each kind of bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
import redis
from click.testing import CliRunner, Result
from jobqueue.cli import cli

pytestmark = [pytest.mark.redis, pytest.mark.timeout(120)]

JOB_FIELDS = {
    "id", "queue", "name", "state", "priority", "payload", "attempts", "max_attempts",
    "progress", "result", "error", "created_at", "started_at", "finished_at",
}  # fmt: skip
STATS_FIELDS = {
    "queued", "active", "delayed", "completed", "failed", "cancelled",
    "oldest_queued_age_seconds", "failure_ratio", "workers",
}  # fmt: skip

Jobq = Callable[..., Result]


@pytest.fixture
def jobq(redis_url: str) -> Jobq:
    def run(*args: str, stdin: str | None = None) -> Result:
        return CliRunner().invoke(cli, ["--redis", redis_url, *args], input=stdin)

    return run


@pytest.fixture
def db(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def run_burst_worker(redis_url: str, queue: str = "q") -> None:
    """Process everything queued with a real worker process, then return."""
    env = {**os.environ, "JOBQUEUE_REDIS_URL": redis_url, "JOBQUEUE_METRICS_PORT": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "jobqueue.cli", "worker", queue, "--burst"],
        env=env, capture_output=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()


def one_error_line(result: Result) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("jobq: error: ")
    return lines[0]


def check_iso_or_null(record: dict[str, object]) -> None:
    for key in ("created_at", "started_at", "finished_at"):
        value = record[key]
        assert value is None or isinstance(datetime.fromisoformat(str(value)), datetime)


# --- happy paths --------------------------------------------------------------------------


def test_submit_prints_the_id_and_status_shows_the_job(jobq: Jobq) -> None:
    submitted = jobq("submit", "q", "debug.echo", '{"a": 1}', "--priority", "2")
    assert submitted.exit_code == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    assert len(submitted.stdout.splitlines()) == 1 and job_id

    shown = jobq("status", "q", job_id, "--json")
    assert shown.exit_code == 0
    record = json.loads(shown.stdout)
    assert record.keys() >= JOB_FIELDS
    assert (record["id"], record["state"], record["priority"], record["payload"]) == (
        job_id, "queued", 2, {"a": 1},
    )  # fmt: skip
    assert (record["attempts"], record["max_attempts"]) == (0, 3)
    check_iso_or_null(record)
    assert record["started_at"] is None and record["created_at"] is not None

    human = jobq("status", "q", job_id)
    assert human.exit_code == 0 and job_id in human.stdout and "queued" in human.stdout


def test_submit_json_options_and_payload_from_stdin(jobq: Jobq) -> None:
    result = jobq(
        "submit", "q", "debug.echo", "-", "--json", "--delay", "1h", "--attempts", "5",
        "--backoff", "fixed:2", "--timeout", "30s", "--dedup-key", "k1", stdin='{"from": "stdin"}',
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record.keys() >= JOB_FIELDS
    assert record["payload"] == {"from": "stdin"}
    assert (record["state"], record["max_attempts"], record["timeout"]) == ("delayed", 5, 30.0)
    again = jobq("submit", "q", "debug.echo", "{}", "--dedup-key", "k1")
    assert again.stdout.strip() == record["id"]  # dedup: the unfinished job's id


def test_wait_exit_codes(jobq: Jobq, redis_url: str) -> None:
    ok = jobq("submit", "q", "debug.echo", '{"v": 42}').stdout.strip()
    bad = jobq("submit", "q", "debug.fail", '{"message": "kaput"}', "--attempts", "1")
    bad_id = bad.stdout.strip()
    run_burst_worker(redis_url)
    cancelled = jobq("submit", "q", "debug.echo", "--delay", "1h").stdout.strip()
    assert jobq("cancel", "q", cancelled).exit_code == 0
    never = jobq("submit", "q", "debug.echo", "--delay", "1h").stdout.strip()

    done = jobq("wait", "q", ok)
    assert done.exit_code == 0 and json.loads(done.stdout) == {"v": 42}
    failed = jobq("wait", "q", bad_id)
    assert failed.exit_code == 1
    assert "failed" in one_error_line(failed) and "kaput" in failed.stderr
    was_cancelled = jobq("wait", "q", cancelled)
    assert was_cancelled.exit_code == 1 and "cancelled" in one_error_line(was_cancelled)
    timed_out = jobq("wait", "q", never, "--timeout", "0.3")
    assert timed_out.exit_code == 3
    assert "timed out" in one_error_line(timed_out) and "delayed" in timed_out.stderr


@pytest.mark.slow
def test_wait_longer_than_a_socket_timeout_still_times_out_with_3(jobq: Jobq) -> None:
    never = jobq("submit", "q", "debug.echo", "--delay", "1h").stdout.strip()
    timed_out = jobq("wait", "q", never, "--timeout", "7")
    assert timed_out.exit_code == 3, timed_out.stderr


def test_list_by_state_with_limit_and_json(jobq: Jobq) -> None:
    ids = [jobq("submit", "q", "debug.echo", str(i)).stdout.strip() for i in range(3)]
    jobq("submit", "q", "debug.echo", "--delay", "1h")
    listed = jobq("list", "q", "--state", "queued", "--json")
    records = json.loads(listed.stdout)
    assert sorted(r["id"] for r in records) == sorted(ids)
    for record in records:
        assert record.keys() >= JOB_FIELDS
    assert len(json.loads(jobq("list", "q", "--limit", "2", "--json").stdout)) == 2
    assert len(json.loads(jobq("list", "q", "--json").stdout)) == 4
    human = jobq("list", "q")
    assert human.exit_code == 0 and all(job_id in human.stdout for job_id in ids)


def test_cancel_retry_and_cleanup(jobq: Jobq, redis_url: str) -> None:
    queued = jobq("submit", "q", "debug.echo", "--delay", "1h").stdout.strip()
    result = jobq("cancel", "q", queued)
    assert result.exit_code == 0 and "cancelled" in result.stdout
    again = jobq("cancel", "q", queued)
    assert again.exit_code == 1 and "already finished" in one_error_line(again)

    failing = [
        jobq("submit", "q", "debug.fail", "--attempts", "1").stdout.strip() for _ in range(2)
    ]
    run_burst_worker(redis_url)
    one = jobq("retry", "q", failing[0])
    assert one.exit_code == 0
    assert json.loads(jobq("status", "q", failing[0], "--json").stdout)["state"] == "queued"
    rest = jobq("retry", "q", "--all")
    assert rest.exit_code == 0 and "retrying 1 job(s)" in rest.stdout
    run_burst_worker(redis_url)
    completed = jobq("retry", "q", jobq("submit", "q", "debug.echo").stdout.strip())
    assert completed.exit_code == 1 and "queued" in one_error_line(completed)

    kept = jobq("cleanup", "q", "--older-than", "7d")
    assert kept.exit_code == 0 and "removed 0 job(s)" in kept.stdout
    removed = jobq("cleanup", "q", "--older-than", "0s", "--state", "failed")
    assert removed.exit_code == 0 and "removed 2 job(s)" in removed.stdout
    assert jobq("status", "q", failing[0]).exit_code == 1  # gone
    assert jobq("status", "q", queued).exit_code == 0  # cancelled: another state, kept


def test_stats_and_queues(jobq: Jobq) -> None:
    jobq("submit", "q", "debug.echo")
    jobq("submit", "other", "debug.echo", "--delay", "1h")
    stats = json.loads(jobq("stats", "q", "--json").stdout)
    assert stats.keys() >= STATS_FIELDS
    assert (stats["queued"], stats["delayed"], stats["workers"]) == (1, 0, [])
    human = jobq("stats", "q")
    assert human.exit_code == 0 and "queued" in human.stdout
    listed = json.loads(jobq("queues", "--json").stdout)
    assert [row["queue"] for row in listed] == ["other", "q"]
    assert jobq("queues").stdout.count("\n") >= 3


def _default_sigint() -> None:
    # A suite started in the background without job control inherits SIGINT ignored, and so
    # would the CLI (a Ctrl-C it is told to ignore); the test wants an interactive terminal's.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_stats_watch_prints_until_interrupted(redis_url: str) -> None:
    env = {**os.environ, "JOBQUEUE_REDIS_URL": redis_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobqueue.cli", "stats", "q", "--json", "--watch",
         "--interval", "0.2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_default_sigint,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        for line in lines:
            assert json.loads(line).keys() >= STATS_FIELDS
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- bad input: exit 2, one line, Redis unchanged --------------------------------------------

BAD_INPUTS = [
    (["submit", "q", "debug.echo", "{not json"], "PAYLOAD_JSON"),
    (["submit", "q", "debug.echo", '{"x": NaN}'], "PAYLOAD_JSON"),
    (["submit", "q", "debug.echo", "--delay", "-5"], "negative"),
    (["submit", "q", "debug.echo", "--delay", "soon"], "--delay"),
    (["submit", "q", "debug.echo", "--priority", "10"], "priority"),
    (["submit", "q", "debug.echo", "--priority", "-1"], "priority"),
    (["submit", "q", "debug.echo", "--attempts", "0"], "attempts"),
    (["submit", "q", "debug.echo", "--backoff", "linear:3"], "backoff"),
    (["submit", "q", "debug.echo", "--timeout", "5x"], "--timeout"),
    (["submit", "bad{queue}", "debug.echo"], "queue"),
    (["list", "q", "--state", "sleeping"], "--state"),
    (["list", "q", "--limit", "0"], "--limit"),
    (["cleanup", "q", "--older-than", "7d", "--state", "queued"], "--state"),
    (["cleanup", "q", "--older-than", "ages"], "--older-than"),
    (["cleanup", "q"], "--older-than"),
    (["retry", "q"], "JOB_ID or --all"),
    (["retry", "q", "abc", "--all"], "JOB_ID or --all"),
    (["stats", "q", "--window", "0"], "--window"),
    (["nosuchcommand"], "nosuchcommand"),
]


@pytest.mark.parametrize(("args", "named"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    jobq: Jobq, db: redis.Redis, args: list[str], named: str
) -> None:
    jobq("submit", "q", "debug.echo", '{"seed": true}')  # the queue exists beforehand
    before = (db.dbsize(), sorted(db.keys("*")))
    result = jobq(*args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert named in one_error_line(result)
    assert result.stdout == ""
    assert (db.dbsize(), sorted(db.keys("*"))) == before


def test_payload_over_the_size_limit_is_refused(jobq: Jobq, db: redis.Redis) -> None:
    before = (db.dbsize(), sorted(db.keys("*")))
    big = json.dumps({"blob": "x" * (1024 * 1024)})
    result = jobq("submit", "q", "debug.echo", "-", stdin=big)
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "payload" in line and "limit" in line
    assert (db.dbsize(), sorted(db.keys("*"))) == before


def test_bad_redis_url_is_bad_input(jobq: Jobq) -> None:
    result = CliRunner().invoke(cli, ["--redis", "http://localhost:1", "queues"])
    assert result.exit_code == 2 and "--redis" in one_error_line(result)


@pytest.mark.parametrize(
    "args",
    [[], ["q", "--concurrency", "0"], ["q", "--handlers", "no_such_module_for_jobq"],
     ["q", "--lease", "0.1"], ["q", "--log-format", "xml"]],
)  # fmt: skip
def test_bad_worker_settings_exit_2(jobq: Jobq, args: list[str]) -> None:
    result = jobq("worker", *args)
    assert result.exit_code == 2
    one_error_line(result)


# --- unknown ids, unreachable Redis -----------------------------------------------------------


@pytest.mark.parametrize("command", ["status", "wait", "cancel", "retry"])
def test_unknown_job_id_exits_1(jobq: Jobq, command: str) -> None:
    result = jobq(command, "q", "no-such-id")
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "'no-such-id'" in line and "not found" in line


def test_unreachable_redis_is_one_clear_line() -> None:
    from fixtures_redis import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"
    for args in (["status", "q", "x"], ["submit", "q", "debug.echo"], ["queues"]):
        result = CliRunner().invoke(cli, ["--redis", url, *args])
        assert result.exit_code == 1
        assert f"cannot reach Redis at {url}" in one_error_line(result)


def test_password_is_not_printed_when_redis_is_unreachable() -> None:
    from fixtures_redis import free_port

    url = f"redis://user:hunter2@127.0.0.1:{free_port()}/0"
    result = CliRunner().invoke(cli, ["--redis", url, "queues"])
    assert result.exit_code == 1
    assert "hunter2" not in result.stderr and "***" in result.stderr


def test_worker_burst_exits_0_when_the_queue_is_empty(redis_url: str) -> None:
    run_burst_worker(redis_url, "empty-queue")


def test_worker_configured_only_by_environment_logs_json(jobq: Jobq, redis_url: str) -> None:
    job_id = jobq("submit", "envq", "debug.echo", '{"from": "env"}').stdout.strip()
    env = {
        **os.environ, "JOBQUEUE_REDIS_URL": redis_url, "JOBQUEUE_QUEUES": "envq",
        "JOBQUEUE_BURST": "true", "JOBQUEUE_CONCURRENCY": "3", "JOBQUEUE_METRICS_PORT": "0",
        "JOBQUEUE_LOG_FORMAT": "json", "JOBQUEUE_WORKER_NAME": "env-worker",
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "jobqueue.cli", "worker"], env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    entries = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert entries and all({"ts", "level", "logger", "message"} <= e.keys() for e in entries)
    assert any("env-worker started" in e["message"] and "concurrency=3" in e["message"]
               for e in entries)  # fmt: skip
    assert json.loads(jobq("wait", "envq", job_id).stdout) == {"from": "env"}


def test_password_from_the_environment_and_a_clear_error_without_it(
    redis_url: str, db: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    db.config_set("requirepass", "s3cret")
    try:
        monkeypatch.setenv("JOBQUEUE_REDIS_PASSWORD", "s3cret")
        allowed = CliRunner().invoke(cli, ["--redis", redis_url, "submit", "q", "debug.echo"])
        assert allowed.exit_code == 0, allowed.stderr
        monkeypatch.delenv("JOBQUEUE_REDIS_PASSWORD")
        refused = CliRunner().invoke(cli, ["--redis", redis_url, "queues"])
        assert refused.exit_code == 1
        assert "Redis" in one_error_line(refused)
    finally:
        admin = redis.Redis.from_url(redis_url, password="s3cret")
        admin.config_set("requirepass", "")
        admin.close()


def test_worker_metrics_port_in_use_is_a_clear_error(redis_url: str) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "JOBQUEUE_REDIS_URL": redis_url}
        done = subprocess.run(
            [sys.executable, "-m", "jobqueue.cli", "worker", "q", "--metrics-host", "127.0.0.1",
             "--metrics-port", str(port)],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in done.stderr


def test_status_and_list_show_a_job_with_a_corrupt_stored_payload(
    jobq: Jobq, db: redis.Redis
) -> None:
    job_id = jobq("submit", "q", "debug.echo", '{"a": 1}').stdout.strip()
    key = next(k for k in db.scan_iter(f"*:job:{job_id}"))
    db.hset(key, "payload", "{broken")
    shown = jobq("status", "q", job_id, "--json")
    assert shown.exit_code == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["payload"] == "{broken" and record["corrupt_fields"] == ["payload"]
    table = jobq("status", "q", job_id)
    assert table.exit_code == 0 and "not valid JSON" in table.stdout
    listed = jobq("list", "q")
    assert listed.exit_code == 0, listed.stderr
    assert job_id in listed.stdout and "payload not valid JSON" in listed.stdout
    as_json = jobq("list", "q", "--json")
    assert [r["id"] for r in json.loads(as_json.stdout)] == [job_id]


def test_password_from_the_environment_wins_over_the_url(
    redis_url: str, db: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    db.config_set("requirepass", "s3cret")
    try:
        monkeypatch.setenv("JOBQUEUE_REDIS_PASSWORD", "s3cret")
        wrong_in_url = redis_url.replace("redis://", "redis://:wrong@")
        allowed = CliRunner().invoke(cli, ["--redis", wrong_in_url, "submit", "q", "debug.echo"])
        assert allowed.exit_code == 0, allowed.stderr
        listed = CliRunner().invoke(cli, ["--redis", wrong_in_url, "queues", "--json"])
        assert [row["queue"] for row in json.loads(listed.stdout)] == ["q"]
    finally:
        admin = redis.Redis.from_url(redis_url, password="s3cret")
        admin.config_set("requirepass", "")
        admin.close()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--delay", "1e12"), "delay"),
        (("--timeout", "365d"), "timeout"),
        (("--backoff", "fixed:99999999"), "backoff"),
    ],
)
def test_durations_out_of_bounds_exit_2_with_one_line(
    jobq: Jobq, db: redis.Redis, args: tuple[str, str], named: str
) -> None:
    result = jobq("submit", "q", "work", *args)
    assert result.exit_code == 2
    assert named in one_error_line(result)
    assert db.dbsize() == 0


def test_settings_are_shown_changed_and_checked(jobq: Jobq, db: redis.Redis) -> None:
    shown = jobq("settings", "q", "--json")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["keep_completed"] == 10_000
    changed = jobq("settings", "q", "--keep-completed", "5", "--result-ttl", "1h", "--json")
    assert changed.exit_code == 0, changed.stderr
    assert (
        json.loads(changed.stdout)["keep_completed"],
        json.loads(changed.stdout)["result_ttl"],
    ) == (5, 3600)
    table = jobq("settings", "q")
    assert "keep_completed" in table.stdout and "stored" in table.stdout
    bad = jobq("settings", "q", "--max-lease-lapses", "0")
    assert bad.exit_code == 2 and "max_lease_lapses" in one_error_line(bad)
    assert db.hget("{jq:q}:settings", "max_lease_lapses") is None


def test_status_shows_lease_lapses(jobq: Jobq, db: redis.Redis) -> None:
    job_id = jobq("submit", "q", "work").stdout.strip()
    db.hset(f"{{jq:q}}:job:{job_id}", "lapses", "2")
    shown = jobq("status", "q", job_id)
    assert shown.exit_code == 0 and "lease lapses" in shown.stdout and "2" in shown.stdout
    assert jobq("status", "q", job_id, "--json").stdout.count('"lapses": 2') == 1


def test_schedules_are_added_listed_paused_resumed_and_removed(jobq: Jobq, db: redis.Redis) -> None:
    added = jobq("schedule", "add", "q", "report.daily", '{"scope": "all"}', "--cron",
                 "30 2 * * *", "--tz", "Europe/Berlin", "--schedule", "nightly",
                 "--concurrency", "Forbid", "--priority", "2")  # fmt: skip
    assert added.exit_code == 0, added.stderr
    listed = json.loads(jobq("schedule", "list", "q", "--json").stdout)
    [nightly] = listed
    assert (nightly["name"], nightly["job"], nightly["cron"], nightly["timezone"]) == (
        "nightly",
        "report.daily",
        "30 2 * * *",
        "Europe/Berlin",
    )
    assert (nightly["payload"], nightly["concurrency_policy"], nightly["priority"]) == (
        {"scope": "all"},
        "Forbid",
        2,
    )
    assert nightly["next_due_ms"] is not None
    assert jobq("schedule", "pause", "q", "nightly").exit_code == 0
    assert json.loads(jobq("schedule", "list", "q", "--json").stdout)[0]["next_due_ms"] is None
    assert jobq("schedule", "resume", "q", "nightly").exit_code == 0
    assert "nightly" in jobq("schedule", "list", "q").stdout
    assert jobq("schedule", "remove", "q", "nightly").exit_code == 0
    assert json.loads(jobq("schedule", "list", "q", "--json").stdout) == []
    missing = jobq("schedule", "remove", "q", "nightly")
    assert missing.exit_code == 1 and "not found" in one_error_line(missing)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--cron", "61 * * * *"), "cron"),
        (("--every", "5m", "--tz", "Nowhere/Else"), "timezone"),
        (("--every", "0.1"), "every"),
    ],
)
def test_a_bad_schedule_exits_2_with_one_line(
    jobq: Jobq, db: redis.Redis, args: tuple[str, ...], named: str
) -> None:
    result = jobq("schedule", "add", "q", "work", *args)
    assert result.exit_code == 2
    assert named in one_error_line(result)
    assert db.dbsize() == 0
    both = jobq("schedule", "add", "q", "work", "--cron", "* * * * *", "--every", "5s")
    assert both.exit_code == 2 and "exactly one" in one_error_line(both)
