"""The handler registry: decorator, lookup, async/sync detection, module import errors."""

from __future__ import annotations

import functools
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from jobqueue.registry import (
    DEFAULT_REGISTRY,
    HandlerModuleError,
    HandlerNotFound,
    Registry,
    import_handler_modules,
    task,
)


def test_task_registers_async_and_sync_handlers() -> None:
    registry = Registry()

    @task("a.async", registry=registry)
    async def handle_async(ctx: Any, payload: Any) -> Any:
        return payload

    @task("a.sync", registry=registry)
    def handle_sync(ctx: Any, payload: Any) -> Any:
        return payload

    assert registry.get("a.async").fn is handle_async
    assert registry.get("a.async").is_async
    assert not registry.get("a.sync").is_async
    assert registry.names() == ["a.async", "a.sync"]
    assert "a.sync" in registry and "a.other" not in registry


def test_partial_of_async_function_counts_as_async() -> None:
    registry = Registry()

    async def handle(ctx: Any, payload: Any, extra: int) -> int:
        return extra

    registry.register("p", functools.partial(handle, extra=1))
    assert registry.get("p").is_async


def test_unknown_name_raises_handler_not_found_naming_it() -> None:
    with pytest.raises(HandlerNotFound, match=r"'no\.such'"):
        Registry().get("no.such")


def test_a_name_cannot_be_taken_by_a_second_function() -> None:
    registry = Registry()

    def first(ctx: Any, payload: Any) -> None: ...

    def second(ctx: Any, payload: Any) -> None: ...

    registry.register("n", first)
    registry.register("n", first)  # the same function again is fine
    with pytest.raises(ValueError, match="already registered"):
        registry.register("n", second)
    assert registry.get("n").fn is first


@pytest.mark.parametrize("name", ["", "   "])
def test_blank_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        Registry().register(name, lambda ctx, payload: None)


def test_builtins_are_registered_in_the_default_registry() -> None:
    import jobqueue.builtins  # noqa: F401

    for name in ("http.request", "debug.echo", "debug.sleep", "debug.fail"):
        assert name in DEFAULT_REGISTRY


def test_import_handler_modules_imports_and_registers(tmp_path: Path) -> None:
    (tmp_path / "my_handlers_mod.py").write_text(
        textwrap.dedent(
            """
            import jobqueue.registry

            @jobqueue.registry.task("test.imported.handler")
            def handle(ctx, payload):
                return 1
            """
        )
    )
    sys.path.insert(0, str(tmp_path))
    try:
        import_handler_modules(["my_handlers_mod"])
        assert "test.imported.handler" in DEFAULT_REGISTRY
    finally:
        sys.path.remove(str(tmp_path))
        DEFAULT_REGISTRY.unregister("test.imported.handler")
        sys.modules.pop("my_handlers_mod", None)


def test_missing_module_error_names_it() -> None:
    with pytest.raises(HandlerModuleError, match="'no_such_module_xyz'"):
        import_handler_modules(["no_such_module_xyz"])


def test_module_raising_on_import_is_reported(tmp_path: Path) -> None:
    (tmp_path / "broken_handlers_mod.py").write_text("raise RuntimeError('boom at import')\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(HandlerModuleError, match="RuntimeError: boom at import"):
            import_handler_modules(["broken_handlers_mod"])
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("broken_handlers_mod", None)


def test_empty_module_name_is_an_error() -> None:
    with pytest.raises(HandlerModuleError, match="empty"):
        import_handler_modules([" "])
