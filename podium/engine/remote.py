"""Work that runs elsewhere: ``@wf.step(executor="ray")`` and ``ctx.call(fn, executor="ray")``.

An executor is any object with ``async run(fn, *, key)`` that runs the no-argument callable ``fn``
somewhere else and returns its result. ``key`` is stable for one attempt of one step execution
across engine crashes: an executor that keeps results under it (Ray's does, in a detached actor)
hands a result that finished while the engine was down to the engine that resumes the run, instead
of running the work again. Cancelling the awaiting task must cancel the remote work.

The engine records the result like any step's; it only needs the executor by name. Names resolve
to what :func:`register_executor` added, else to the ``podium.executors`` entry-point group
(``ray = "podium.ml._ray:executor"``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Protocol

from ..errors import ConfigError, StepTimeout

ENTRY_POINT_GROUP = "podium.executors"


class RemoteExecutor(Protocol):
    """Runs work elsewhere (see the module docstring)."""

    async def run(self, fn: Callable[[], Any], *, key: str) -> Any: ...


_executors: dict[str, RemoteExecutor] = {}
_lock = threading.Lock()


def register_executor(name: str, executor: RemoteExecutor, *, replace: bool = False) -> None:
    """Make ``executor`` available as ``executor=name`` (e.g. a Ray executor with a cluster address)."""
    with _lock:
        if name in _executors and not replace:
            raise ConfigError(f"executor {name!r} is already registered; pass replace=True to override it")
        _executors[name] = executor


def known_executors() -> list[str]:
    """The names ``executor=`` may use: registered ones and the entry points (none is loaded)."""
    return sorted({*_executors, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})


def executor_named(name: str) -> RemoteExecutor:
    """The executor called ``name``, loading it from the ``podium.executors`` entry points if needed."""
    with _lock:
        found = _executors.get(name)
        if found is not None:
            return found
        eps = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        if name not in eps:
            known = ", ".join(sorted({*_executors, *eps})) or "none"
            raise ConfigError(
                f"executor {name!r} is not known (known: {known}); install its extra (ray: pip install "
                "'podium[ray]') or register one with podium.engine.remote.register_executor"
            )
        try:
            obj = eps[name].load()
        except ImportError as exc:
            raise ConfigError(f"executor {name!r} cannot be loaded ({exc}); pip install 'podium[{name}]'") from None
        _executors[name] = obj() if isinstance(obj, type) else obj
        return _executors[name]


async def run_remote(name: str, fn: Callable[[], Any], *, key: str, timeout: float | None, what: str) -> Any:
    """Run ``fn`` on executor ``name`` under ``key``; a timeout cancels the remote work."""
    ex = executor_named(name)
    if timeout is None:
        return await ex.run(fn, key=key)
    try:
        async with asyncio.timeout(timeout):
            return await ex.run(fn, key=key)
    except TimeoutError:
        raise StepTimeout(f"{what} did not finish within {timeout}s on executor {name!r} (it was cancelled there)") from None
