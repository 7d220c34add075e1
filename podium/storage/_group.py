"""Group commit: writes made at the same moment share one transaction (:class:`GroupWrite`: runs'
ends with their audit entries, on PostgreSQL also step events and run reads), and a burst of calls
to one action shares one call (:class:`Coalesce`: the workers' wake-up).

Runs first (:class:`GroupCommit`): the runs started at the same moment (many event posts, a fan-out of
child runs, ``asyncio.gather`` of starts) share one transaction, so a burst of N starts costs one
commit instead of N (one fsync with ``durability="power"`` or on PostgreSQL).

Each caller of :meth:`GroupCommit.create_run` waits until the transaction holding its run has
committed: nothing is acknowledged before it is durable. Starts queue while a commit is under way
(PostgreSQL) and for one turn of the event loop, never longer. A batch that fails (a bad event in one
run) is written again one run at a time, so each caller gets its own answer or error.

A run may come with its audit entry (its ``run.start``): the store writes it in the same transaction,
only for a run that is new, placing the entries of the batch one after the other in its audit chain
(:meth:`podium.storage._audit.ChainedAudit._chained_many`). A failed batch moves the chain not at all,
so writing its runs again one by one leaves no gap in it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from ..records import AuditEntry, Event, RunRecord

NewRun = tuple[RunRecord, Sequence[Event], AuditEntry | None]
"""A run to create: its record, its first events, and its start audit entry (None: none)."""

#: The most items one transaction holds (a larger burst takes several).
MAX_BATCH = 500

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


class GroupWrite(Generic[T, R]):
    """Writes items through ``write`` (all of a batch in one transaction, one result each),
    grouping the calls of :meth:`submit` made at the same moment. A batch that fails is written
    again one item at a time, so each caller gets its own answer or error."""

    def __init__(self, write: Callable[[Sequence[T]], Awaitable[list[R]]], *, eager: bool = False) -> None:
        self._write = write
        self._queue: list[tuple[T, asyncio.Future[R], object]] = []
        """Items to write, with their futures and keys (a run: its writes are in order)."""
        self._task: asyncio.Task[None] | None = None
        self.eager = eager
        """The first write of a turn of the event loop is made at once, alone; only the writes that
        follow it in the same turn are gathered (a lone writer never waits for a turn: SQLite,
        whose writes do not block on I/O)."""
        self._turn: object = None
        self._turn_key: tuple[object, object] = (None, None)
        """The turn's mark and the key that wrote at once in it (:meth:`at_once`)."""
        self._landing: dict[object, asyncio.Future[R]] = {}
        self._refused: dict[object, BaseException] = {}
        """Keys (runs) whose write was refused, until that write's caller has heard of it: their
        later writes, queued behind it or made meanwhile, are refused with the same error (a run's
        writes follow one another; one refused, a later one would land after another engine's
        events, or leave a hole)."""
        self.batches = 0
        """Transactions written (with :attr:`runs`: how well the calls were grouped)."""
        self.runs = 0
        """Items written."""

    @property
    def gathering(self) -> bool:
        """Whether a group is being gathered or written now: a write made now can join it."""
        return self._task is not None

    async def submit(self, item: T, *, lands: bool = False, key: object = None) -> R:
        """Write ``item`` (with the others of its group) and return its result. Cancelled while
        still queued, it is not written, unless ``lands``: then it is written all the same (a run's
        step event, whose seq and digest its writer has already counted: dropping it would leave a
        hole in the run's log under the events written after it), and :meth:`landed` with its
        ``key`` (its run) waits until it is. A write made at once (eager) lets the later writes of
        its ``key`` in this turn be made at once too (:meth:`at_once`)."""
        loop = asyncio.get_running_loop()
        if key is not None and (refused := self._refused.get(key)) is not None:
            raise refused
        if self.eager and self._task is None and self._turn is None:
            self._mark_turn(key)  # later writes of this turn gather, except this key's own (at_once)
            try:
                results = await self._write([item])
            except Exception as exc:  # the run's writes queued while it was made are refused too
                if key is not None:
                    self._refused[key] = exc
                    self._heard(key, exc)
                raise
            self.batches += 1
            self.runs += 1
            return results[0]
        done: asyncio.Future[R] = loop.create_future()
        self._queue.append((item, done, key))
        if self._task is None:
            self._task = loop.create_task(self._flush())
        try:
            return await (asyncio.shield(done) if lands else done)
        except Exception as exc:
            self._heard(key, exc)
            raise
        except asyncio.CancelledError:
            # Cancelled while still queued: its write is not made behind its back (a run cancelled
            # as it ended does not also end completed). Once its group is being written, it lands.
            if not lands:
                self._queue = [q for q in self._queue if q[1] is not done]
            elif not done.done():
                if key is not None:
                    self._landing[key] = done
                done.add_done_callback(functools.partial(self._landed, key))
            raise

    def _landed(self, key: object, done: asyncio.Future[R]) -> None:
        if key is not None and self._landing.get(key) is done:
            del self._landing[key]
        if not done.cancelled():
            err = done.exception()  # retrieved: its caller went away, and its run's next write will tell
            if err is not None:
                self._heard(key, err)

    def _heard(self, key: object, exc: BaseException) -> None:
        """The caller of ``key``'s refused write (``exc``) hears of it now (and stops writing for
        the run): the run's writes still queued (made before it heard) are refused with it, unwritten,
        and the key is free again for a later writer of the run (this engine taking it up anew).
        Not left to the next group: a caller waiting on its write directly hears before that group
        is written."""
        if key is None or self._refused.get(key) is not exc:
            return
        del self._refused[key]
        kept = []
        for one in self._queue:
            if one[2] == key:
                if not one[1].done():
                    one[1].set_exception(exc)
            else:
                kept.append(one)
        self._queue = kept

    async def landed(self, key: object, *, timeout: float = 10.0) -> None:
        """Wait until the write of ``key`` whose caller was cancelled (``lands``) is made or failed,
        so that a later write of the same run does not commit before it on another connection.
        Never longer than ``timeout`` seconds: a write held that long (a lock another process
        keeps) must not hold the run's end for ever; that is logged."""
        done = self._landing.get(key)
        if done is not None:
            finished, _ = await asyncio.wait([done], timeout=timeout)
            if not finished:
                log.warning("a step event of run %s is still being written after %.0f s; its end goes on", key, timeout)

    def at_once(self, key: object) -> bool:
        """Whether a write of ``key`` (a run) may be made at once, outside any group (eager only):
        not while a group is gathering, nor after a write of another key or a direct write in this
        turn of the event loop. Then it goes through :meth:`submit`, and the writes of the many runs
        stepping in one turn share one transaction; one run's successive writes stay at once."""
        turn = self._turn
        if turn is not None:  # the most frequent answer first: a lone run's next step, same turn
            mark = self._turn_key
            return self._task is None and mark[0] is turn and mark[1] == key and not self._refused
        if self._task is not None or (self._refused and key in self._refused):
            return False
        self._mark_turn(key)
        return True

    def _mark_turn(self, key: object) -> None:
        """This turn of the loop has had its write made at once, by ``key``; the mark goes at the
        next turn."""
        self._turn = asyncio.get_running_loop().call_soon(self._turn_over)
        self._turn_key = (self._turn, key)

    def _turn_over(self) -> None:
        self._turn = None

    async def _flush(self) -> None:
        try:
            while self._queue:
                await asyncio.sleep(0)  # the calls made in this turn of the loop join the batch
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                await self._commit(batch)
        finally:
            self._task = None
            for _, done, _ in self._queue:  # cancelled (the loop is closing): nobody writes them
                if not done.done():
                    done.cancel()
            self._queue = []

    async def _commit(self, batch: list[tuple[T, asyncio.Future[R], object]]) -> None:
        if self._refused:  # queued behind a write of their run that was refused: not made either
            kept = []
            for one in batch:
                if one[2] is not None and (err := self._refused.get(one[2])) is not None:
                    if not one[1].done():
                        one[1].set_exception(err)
                else:
                    kept.append(one)
            if not kept:
                return
            batch = kept
        try:
            results = await self._write([item for item, _, _ in batch])
        except asyncio.CancelledError:
            for _, done, _ in batch:
                if not done.done():
                    done.cancel()
            raise
        except Exception as exc:
            if len(batch) == 1:
                _, done, key = batch[0]
                if not done.done():
                    done.set_exception(exc)
                    if key is not None:  # the run's later writes are refused too (see _refused)
                        self._refused[key] = exc
                return
            for one in batch:  # who is to blame: each alone (a run's writes after its refused one are
                await self._commit([one])  # refused unwritten, see _refused)
            return
        self.batches += 1
        self.runs += len(batch)
        for (_, done, _), result in zip(batch, results, strict=True):
            if not done.done():
                done.set_result(result)


class GroupCommit(GroupWrite[NewRun, bool]):
    """Creates runs through ``write`` (a store's ``create_runs``), grouping concurrent calls."""

    async def create_run(self, run: RunRecord, events: Sequence[Event], audit: AuditEntry | None = None) -> bool:
        return await self.submit((run, events, audit))


class Coalesce:
    """Calls ``fn`` on behalf of many callers: the calls made while one is under way share the next
    one (a burst of run starts sends one wake-up, not one each). Each caller returns after a call
    of ``fn`` that began after it asked, or gets that call's error."""

    def __init__(self, fn: Callable[[], Awaitable[None]]) -> None:
        self._fn = fn
        self._next: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.calls = 0
        """How many times ``fn`` was called."""

    async def __call__(self) -> None:
        loop = asyncio.get_running_loop()
        if self._next is None:
            self._next = loop.create_future()
        fut = self._next
        if self._task is None:
            self._task = loop.create_task(self._run())
        await asyncio.shield(fut)

    async def _run(self) -> None:
        try:
            while self._next is not None:
                fut, self._next = self._next, None
                try:
                    self.calls += 1
                    await self._fn()
                except Exception as exc:
                    fut.set_exception(exc)
                    fut.exception()  # retrieved: a caller that went away leaves no warning
                else:
                    fut.set_result(None)
        finally:
            self._task = None
            if self._next is not None and not self._next.done():  # cancelled (the loop is closing)
                self._next.cancel()
                self._next = None
