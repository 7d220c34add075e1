"""Steps on Ray: ``@wf.step(executor="ray")``, YAML ``executor: ray``, ``ctx.call(fn, executor="ray")``.

The work runs as a Ray task submitted by a detached actor (``podium-results`` in the ``podium``
namespace) that keeps each task's result under the engine's key for an hour. So the task belongs
to the actor, not to the engine: if the engine dies while the task runs, the task goes on, and the
engine that resumes the run asks the actor for the same key and gets the finished result (or
waits for the running task) instead of running the work again. Cancelling the step (a cancelled
run, a timeout) cancels the Ray task with ``ray.cancel``.

Where Ray is: ``RayExecutor(address=...)``, else ``$PODIUM_RAY_ADDRESS`` (``ray://host:10001`` or
``host:6379`` of a running cluster), else a local Ray started in this process on 127.0.0.1 on first
use (it stops with the process: results survive an engine crash only on a cluster that outlives it,
e.g. one started with ``ray start --head``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError

ACTOR = "podium-results"
NAMESPACE = "podium"
KEEP_SECONDS = 3600.0
"""How long the actor keeps a finished result for an engine that has not taken it yet."""


def _call(fn: Callable[[], Any]) -> Any:
    out = fn()
    if asyncio.iscoroutine(out):  # an async step function: run it to its end in the worker
        return asyncio.run(out)
    return out


class _Results:
    """The detached actor: runs tasks under keys and keeps their results (see the module docstring)."""

    def __init__(self, task: Any) -> None:
        self.task = task
        self.refs: dict[str, Any] = {}
        self.done: dict[str, float] = {}
        self.cancelled: set[str] = set()

    async def run(self, key: str, fn: Callable[[], Any]) -> Any:
        now = time.time()
        for k in [k for k, at in self.done.items() if now - at > KEEP_SECONDS]:
            self.refs.pop(k, None)
            self.done.pop(k, None)
        ref = self.refs.get(key)
        if ref is None or key in self.cancelled:
            self.cancelled.discard(key)
            ref = self.refs[key] = self.task.remote(fn)
        try:
            return await ref
        finally:
            self.done.setdefault(key, time.time())

    async def submitted(self, key: str) -> bool:
        return key in self.refs

    async def cancel(self, key: str) -> bool:
        import ray

        ref = self.refs.get(key)
        if ref is None:
            return False
        self.cancelled.add(key)
        ray.cancel(ref)
        return True

    async def outcome(self, key: str, timeout: float) -> str:
        """``ok``, ``cancelled``, ``failed`` or ``running`` (for tests and operators)."""
        import ray

        ref = self.refs.get(key)
        if ref is None:
            return "unknown"
        try:
            await asyncio.wait_for(asyncio.wrap_future(ref.future()), timeout)
        except TimeoutError:
            return "running"
        except ray.exceptions.TaskCancelledError:
            return "cancelled"
        except Exception:
            return "failed"
        return "ok"


class RayExecutor:
    """Runs work on Ray (see the module docstring). ``register_executor("ray", RayExecutor(address=...),
    replace=True)`` points steps at a cluster; ``init`` is passed to ``ray.init`` for a local Ray."""

    def __init__(self, address: str | None = None, **init: Any) -> None:
        self.address = address
        self.init = init
        self._actor: Any = None
        self._lock = threading.Lock()

    def actor(self) -> Any:
        """The results actor (connecting to Ray, or starting a local one, on first use)."""
        if self._actor is not None:
            return self._actor
        with self._lock:
            if self._actor is None:
                # Ray ties the processes a local start spawns to the spawning *thread* (a parent-death
                # signal): start them on a thread that lives as long as the process, not a pool's.
                done: concurrent.futures.Future[Any] = concurrent.futures.Future()
                threading.Thread(target=self._start, args=(done,), name="podium-ray", daemon=True).start()
                self._actor = done.result()
        return self._actor

    def _start(self, done: concurrent.futures.Future[Any]) -> None:
        try:
            done.set_result(self._connect())
        except BaseException as exc:
            done.set_exception(exc)
            return
        threading.Event().wait()  # keep the thread (and a local Ray) alive with the process

    def _connect(self) -> Any:
        try:
            import ray
        except ImportError:
            raise ConfigError("executor 'ray' needs Ray: pip install 'podium[ray]'") from None
        if not ray.is_initialized():
            address = self.address or os.environ.get("PODIUM_RAY_ADDRESS")
            if address:
                ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, **self.init)
            else:  # a local Ray on loopback only, without its dashboard
                settings = {"include_dashboard": False, "_node_ip_address": "127.0.0.1", **self.init}
                ray.init(namespace=NAMESPACE, log_to_driver=False, **settings)
        task = ray.remote(max_retries=0)(_call)
        actor = ray.remote(_Results).options(
            name=ACTOR, namespace=NAMESPACE, lifetime="detached", get_if_exists=True, max_concurrency=1000, num_cpus=0
        )
        return actor.remote(task)

    async def run(self, fn: Callable[[], Any], *, key: str) -> Any:
        import ray

        actor = await asyncio.to_thread(self.actor)  # ray.init takes seconds: not on the event loop
        ref = actor.run.remote(key, fn)
        try:
            return await ref
        except asyncio.CancelledError:
            # The step was cancelled (a cancelled run, a timeout): so is its Ray task.
            await asyncio.shield(asyncio.wrap_future(actor.cancel.remote(key).future()))
            raise
        except ray.exceptions.RayTaskError as exc:
            raise _cause(exc) from None

    async def outcome(self, key: str, timeout: float = 30.0) -> str:
        """What became of the task under ``key``: ``ok``, ``cancelled``, ``failed``, ``running``, ``unknown``."""
        result: str = await self.actor().outcome.remote(key, timeout)
        return result


def _cause(exc: BaseException) -> BaseException:
    """The step's own exception inside Ray's wrappers (the actor's, around the task's)."""
    import ray

    while isinstance(exc, ray.exceptions.RayTaskError) and isinstance(exc.cause, BaseException):
        exc = exc.cause
    return exc


executor = RayExecutor()
"""The ``ray`` executor of the ``podium.executors`` entry point."""
