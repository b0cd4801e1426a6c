"""Handler registry: maps a job name to the function that runs it.

Handlers are declared with ``@jobqueue.task("name")`` on either
``async def fn(ctx, payload)`` (run on the worker's event loop) or a plain
``def fn(ctx, payload)`` (run in the worker's thread pool, with a synchronous
``ctx.progress``). Worker processes import the modules named by ``--handlers``
(or ``JOBQUEUE_HANDLERS``); importing a module runs its decorators, which
register its handlers in the default registry.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

__all__ = [
    "DEFAULT_REGISTRY",
    "Handler",
    "HandlerModuleError",
    "HandlerNotFound",
    "Registry",
    "import_handler_modules",
    "task",
]

F = TypeVar("F", bound=Callable[..., Any])


class HandlerNotFound(LookupError):
    """No handler is registered under the job's name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no handler registered for job name {name!r}")
        self.name = name


class HandlerModuleError(ImportError):
    """A module named by --handlers could not be imported."""


@dataclass(frozen=True)
class Handler:
    """One registered handler; ``is_async`` decides event loop or thread pool."""

    name: str
    fn: Callable[..., Any]
    is_async: bool


def _is_async_callable(fn: Callable[..., Any]) -> bool:
    # Unwraps functools.partial and callable objects with an async __call__.
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - we need the bound method itself
    return call is not None and inspect.iscoroutinefunction(call)


class Registry:
    """Name -> handler. A name may be registered once (re-registering the same function is
    allowed, so importing a module twice is harmless)."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, name: str, fn: Callable[..., Any]) -> Handler:
        if not isinstance(name, str) or not name.strip():
            raise ValueError("handler name must be a non-empty string")
        if not callable(fn):
            raise TypeError(f"handler for {name!r} is not callable: {fn!r}")
        existing = self._handlers.get(name)
        if existing is not None and existing.fn is not fn and not _same_definition(existing.fn, fn):
            raise ValueError(
                f"handler name {name!r} is already registered by "
                f"{_describe(existing.fn)}; cannot register {_describe(fn)}"
            )
        handler = Handler(name=name, fn=fn, is_async=_is_async_callable(fn))
        self._handlers[name] = handler
        return handler

    def get(self, name: str) -> Handler:
        try:
            return self._handlers[name]
        except KeyError:
            raise HandlerNotFound(name) from None

    def unregister(self, name: str) -> None:
        self._handlers.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._handlers)

    def __contains__(self, name: object) -> bool:
        return name in self._handlers

    def __iter__(self) -> Iterator[Handler]:
        return iter(list(self._handlers.values()))

    def __len__(self) -> int:
        return len(self._handlers)


def _describe(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", "?")
    qualname = getattr(fn, "__qualname__", repr(fn))
    return f"{module}.{qualname}"


def _same_definition(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    # A module re-imported under importlib.reload defines new function objects for the
    # same source; treat those as the same handler rather than a clash.
    return _describe(a) == _describe(b)


DEFAULT_REGISTRY = Registry()


def task(name: str, *, registry: Registry | None = None) -> Callable[[F], F]:
    """Register the decorated function as the handler for jobs named ``name``."""

    target = DEFAULT_REGISTRY if registry is None else registry

    def decorate(fn: F) -> F:
        target.register(name, fn)
        return fn

    return decorate


def import_handler_modules(modules: Iterable[str]) -> list[ModuleType]:
    """Import each named module (so its ``@task`` decorators run).

    Raises HandlerModuleError naming the module and the cause; an empty name is an error too.
    """
    imported: list[ModuleType] = []
    for raw in modules:
        name = raw.strip()
        if not name:
            raise HandlerModuleError("empty handler module name in the --handlers list")
        try:
            imported.append(importlib.import_module(name))
        except ImportError as exc:
            raise HandlerModuleError(f"cannot import handler module {name!r}: {exc}") from exc
        except Exception as exc:  # a module that raises while importing
            raise HandlerModuleError(
                f"handler module {name!r} failed while importing: {type(exc).__name__}: {exc}"
            ) from exc
    return imported
