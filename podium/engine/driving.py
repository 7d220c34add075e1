"""The runs one engine drives now: admission under ``max_concurrent_runs``, and one executor task
per run. Surfaces read it (``client.driving``) for live views of a run in this process."""

from __future__ import annotations

import asyncio
import collections
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .._redact import last_erasure
from ..errors import PermissionDenied
from .gcpace import Pace

if TYPE_CHECKING:
    from ..records import RunRecord
    from .executor import RunExecutor

BUSY = 256
"""Runs driven at once by one client from which the garbage collector is paced for many live runs
(gcpace.py, the ``gc`` setting); Python's pace comes back once they are a quarter of that."""

ENDED_SECONDS = 10.0
"""How long the record of a run that ended here is kept for its result to be read without asking
the store (once): a script that starts many runs, then awaits each result, reads none of them back."""
ENDED_BYTES = 16 << 20
"""The most text (input, output, error) those records may hold together; the oldest go first."""


class DrivenRuns:
    """Executors driving runs in this process, by run id, and the slots that admit them."""

    def __init__(self, max_concurrent: int) -> None:
        self.max_concurrent = max_concurrent
        self._admitted = 0
        self._slot_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._runs: dict[str, tuple[RunExecutor, asyncio.Task[None]]] = {}
        # run id -> (record, when, its size), oldest first (an OrderedDict: popped from the front in O(1))
        self._ended: collections.OrderedDict[str, tuple[RunRecord, float, int]] = collections.OrderedDict()
        self._ended_bytes = 0
        self.pace: Pace | None = None
        """The client's part in the collector's pace (set while it is open)."""

    # -- admission --------------------------------------------------------------------------------

    def try_admit(self) -> bool:
        """Take a slot if one is free."""
        if self._admitted < self.max_concurrent:
            self._admitted += 1
            if self._admitted == BUSY and self.pace is not None:  # a burst of starts, before they are driven
                self.pace.busy(True)
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
        if self.pace is not None and self.pace.is_busy:
            self._calm()
        while self._slot_waiters:
            fut = self._slot_waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                break

    # -- the runs ---------------------------------------------------------------------------------

    def add(self, ex: RunExecutor, task: asyncio.Task[None]) -> None:
        self._runs[ex.run_id] = (ex, task)
        if len(self._runs) == BUSY and self.pace is not None:
            self.pace.busy(True)

    def discard(self, run_id: str, ended: RunRecord | None = None) -> None:
        """This process no longer drives ``run_id``; ``ended``: its record as its end was stored."""
        self._runs.pop(run_id, None)
        if self.pace is not None and self.pace.is_busy:
            self._calm()
        if ended is None:
            return
        size = 512 + sum(sys.getsizeof(t) for t in (ended.input, ended.output, ended.error) if t)  # bytes: 1-4 a character
        if size > ENDED_BYTES // 64:  # a large record is read back from the store
            return
        now = time.monotonic()
        self._drop_old(now)
        kept = self._ended
        while kept and self._ended_bytes + size > ENDED_BYTES:
            self._ended_bytes -= kept.popitem(last=False)[1][2]
        kept[run_id] = (ended, now, size)
        self._ended_bytes += size

    def ended(self, run_id: str) -> RunRecord | None:
        """The record of run ``run_id`` if it ended here within :data:`ENDED_SECONDS` and no erasure
        committed in this process since (given once)."""
        entry = self._ended.pop(run_id, None)
        if entry is None:
            return None
        self._ended_bytes -= entry[2]
        if time.monotonic() - entry[1] > ENDED_SECONDS or entry[1] <= last_erasure():  # erased since: read it
            return None
        return entry[0]

    def _calm(self) -> None:
        """Python's pace again once the runs admitted and driven are down to a quarter of :data:`BUSY`."""
        few = BUSY // 4
        if len(self._runs) <= few and self._admitted <= few and self.pace is not None:
            self.pace.busy(False)

    def _drop_old(self, now: float) -> None:
        kept, old = self._ended, now - ENDED_SECONDS
        while kept and kept[next(iter(kept))][1] <= old:
            self._ended_bytes -= kept.popitem(last=False)[1][2]

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
