"""Choosing the worker's event loop: uvloop when installed, the standard loop on request."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest
import uvloop
from jobqueue.runtime.eventloop import UnavailableEventLoop, loop_factory, resolve
from jobqueue.runtime.settings import SettingsError, WorkerSettings


def test_auto_picks_uvloop_when_it_is_installed() -> None:
    assert resolve("auto") == "uvloop"
    name, factory = loop_factory("auto")
    assert name == "uvloop"
    loop = factory()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_asyncio_gives_the_standard_loop() -> None:
    assert resolve("asyncio") == "asyncio"
    name, factory = loop_factory("asyncio")
    assert name == "asyncio"
    loop = factory()
    try:
        assert not isinstance(loop, uvloop.Loop)
        assert isinstance(loop, asyncio.AbstractEventLoop)
    finally:
        loop.close()


def test_without_uvloop_auto_falls_back_and_an_explicit_request_fails_clearly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvloop" else real(name, *a)
    )
    assert resolve("auto") == "asyncio"
    with pytest.raises(UnavailableEventLoop, match=r"JOBQUEUE_EVENT_LOOP=uvloop.*not installed"):
        resolve("uvloop")


def test_the_setting_comes_from_the_environment() -> None:
    env = {"JOBQUEUE_QUEUES": "q", "JOBQUEUE_EVENT_LOOP": " AsyncIO "}
    assert WorkerSettings.from_env(env).event_loop == "asyncio"
    assert WorkerSettings.from_env({"JOBQUEUE_QUEUES": "q"}).event_loop == "auto"


def test_a_bad_event_loop_names_the_variable() -> None:
    env = {"JOBQUEUE_QUEUES": "q", "JOBQUEUE_EVENT_LOOP": "tokio"}
    with pytest.raises(SettingsError, match="JOBQUEUE_EVENT_LOOP"):
        WorkerSettings.from_env(env)
