"""The runs one engine drives now: admission under ``max_concurrent_runs``, and one executor task
per run. Surfaces read it (``client.driving``) for live views of a run in this process."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..errors import PermissionDenied

if TYPE_CHECKING:
    from .executor import RunExecutor


class DrivenRuns:
    """Executors driving runs in this process, by run id, and the slots that admit them."""

    def __init__(self, max_concurrent: int) -> None:
        self.max_concurrent = max_concurrent
        self._admitted = 0
        self._slot_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._runs: dict[str, tuple[RunExecutor, asyncio.Task[None]]] = {}

    # -- admission --------------------------------------------------------------------------------

    def try_admit(self) -> bool:
        """Take a slot if one is free."""
        if self._admitted < self.max_concurrent:
            self._admitted += 1
            return True
        return False

    async def admit(self) -> None:
        """Wait for a slot and take it."""
        while not self.try_admit():
            fut = asyncio.get_running_loop().create_future()
            self._slot_waiters.append(fut)
            await fut

    def release(self) -> None:
        """Give a slot back (waking one waiter)."""
        self._admitted -= 1
        while self._slot_waiters:
            fut = self._slot_waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                break

    # -- the runs ---------------------------------------------------------------------------------

    def add(self, ex: RunExecutor, task: asyncio.Task[None]) -> None:
        self._runs[ex.run_id] = (ex, task)

    def discard(self, run_id: str) -> None:
        self._runs.pop(run_id, None)

    def require(self, run_id: str) -> None:
        """Raise :class:`PermissionDenied` unless this client drives run ``run_id`` (the engine's own
        paths for a run's steps, such as starting a child run, check nothing else)."""
        if run_id not in self._runs:
            raise PermissionDenied(f"run {run_id} is not driven by this client: start runs with start()")

    def get(self, run_id: str) -> RunExecutor | None:
        """The executor driving ``run_id`` here, if any."""
        entry = self._runs.get(run_id)
        return entry[0] if entry is not None else None

    def task(self, run_id: str) -> asyncio.Task[None] | None:
        entry = self._runs.get(run_id)
        return entry[1] if entry is not None else None

    def items(self) -> list[tuple[RunExecutor, asyncio.Task[None]]]:
        return list(self._runs.values())

    def tasks(self) -> list[asyncio.Task[None]]:
        return [t for _, t in self._runs.values()]

    def ids(self) -> list[str]:
        return list(self._runs)

    def active(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """(run id, workflow, its parents' workflows) of the runs driven here that are not already
        stopping."""
        return [(rid, ex.wf.name, ex.lineage) for rid, (ex, _) in list(self._runs.items()) if ex.reason is None]

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._runs

    def __len__(self) -> int:
        return len(self._runs)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._runs))

    async def cancel(self, run_id: str) -> bool:
        """Cancel the run if it is driven here (waiting for its task to record it). False if not."""
        entry = self._runs.get(run_id)
        if entry is None:
            return False
        ex, task = entry
        if ex.reason is None:
            ex.reason = "cancelled"
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return True

    async def settled(self, run_id: str) -> None:
        """Wait until this process stops driving ``run_id`` for now (it finished, parked or was
        handed on); at once if it does not drive it."""
        ex = self.get(run_id)
        if ex is not None:
            await asyncio.shield(ex.finished)

    def stop(self, run_id: str, reason: str = "shutdown") -> None:
        """Stop driving a run here without recording an end (it resumes elsewhere)."""
        entry = self._runs.get(run_id)
        if entry is not None and not entry[0].finished.done():
            entry[0].reason = reason
            entry[1].cancel()
