"""Run starts made in a burst share one commit.

A start is acknowledged only once it is durable. Made one after the other, each start would cost a
commit of its own, most of a tiny run's cost on SQLite. So the first start of a turn of the event
loop is written as before (its own transaction, at once), and every later start of that same turn,
from code that starts runs in a loop without waiting in between, is written to the engine's start
log (one appended line, as durable against a crash of the process as a WAL commit at
``synchronous=NORMAL``: ``podium/storage/_startlog.py``), acknowledged, and committed with the
others of its turn in the next turn, a few hundred to a transaction; their executors start then.

What changes for the caller: nothing in this process (every call through the client that reads or
changes runs first waits for these commits: :meth:`Client.authorize`); another process sees such a
run a turn of the loop later than its start returned. Starts with a run id of the caller's
(idempotent ones), child runs and forks, starts of a client that does not execute its runs, and
stores that keep no start log (memory, PostgreSQL, SQLite at ``durability="power"``) are written as
before. A process that dies leaves its log: the next engine that opens the store, or the sweep of
one running, creates the runs it names, each line checked against the audit key, as their engine
started them; they are resumed as any run of an engine that died (docs/durability.md, "Starts in a
burst").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import StoreError
from ..records import AuditEntry, Event, RunRecord
from ..storage._base import StartLog
from ..storage._startlog import NewRun, orphans, set_aside

if TYPE_CHECKING:
    from ..governance.service import Governance
    from ..storage import Store
    from .driving import DrivenRuns
    from .executor import RunExecutor
    from .workflow import Workflow

    class Client(Protocol):
        """What the bursts ask of the engine client they belong to."""

        store: Store
        owner: str
        execute: bool
        driving: DrivenRuns
        governance: Governance
        listeners: list[Callable[[Event], None]]
        events: Any

        def drive_run(self, wf: Workflow, run: RunRecord, events: list[Event], *, admitted: bool = False) -> RunExecutor: ...

log = logging.getLogger("podium.engine")

BATCH = 500
"""Runs per transaction when a burst is committed (one transaction holds SQLite's write lock)."""
SWEEP_SECONDS = 10.0
"""How often a running engine looks for the start logs of engines that stopped."""

_Start = tuple["Workflow", RunRecord, Event, "AuditEntry | None", bool]


class Bursts:
    """The starts one client acknowledged through its start log and has not committed yet."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._log: StartLog | None = None
        self._made = False  # whether _log was asked of the store (None then: it keeps none)
        self._off = False  # the log could not be written: no start goes to it any more (kept for those it holds)
        self._turn: asyncio.Handle | None = None  # set while a start was made in this turn
        self.pending: list[_Start] = []
        self._cuts: list[tuple[int, str]] = []  # log files whose starts are not all committed
        self._task: asyncio.Task[None] | None = None
        self._failed: BaseException | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._delay = 0.05
        self._next_sweep = 0.0
        self.logged = 0
        """Starts acknowledged through the start log so far (for tests and benchmarks)."""

    def take(self, wf: Workflow, run: RunRecord, first: Event, anchor: AuditEntry | None, admitted: bool) -> bool:
        """Whether this start (its rows built, not written) is acknowledged through the start log: a
        start of this turn of the loop was committed before it, nothing failed since, and the store
        keeps a log. If so it is written there, and committed with the others of its turn in the next one."""
        if self._turn is None:  # the first of its turn: committed on its own (then :meth:`committed`)
            return False
        start_log = self._start_log()
        if start_log is None or self._off or self._failed is not None:  # the store failing: its caller hears of it
            return False
        try:
            start_log.add(run, first, anchor)
        except OSError as exc:  # no folder, no space: each start committed on its own, as without a log
            log.warning(
                "the start log in %s cannot be written (%s); starts are committed one by one until this engine "
                "restarts: free the disk, or make that path a folder of this user's (0700)", start_log.folder, exc,
            )  # fmt: skip
            self._off = True  # the starts it holds are still committed from it, its files deleted then
            return False
        except ValueError:  # a start too large for a line: committed on its own
            return False
        self.pending.append((wf, run, first, anchor, admitted))
        self.logged += 1
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush())
        return True

    def committed(self) -> None:
        """A start was committed on its own in this turn of the loop: the starts that follow it in
        the same turn form a burst (one that failed does not: the next start tries on its own too)."""
        if self._turn is None:
            self._turn = asyncio.get_running_loop().call_soon(self._turn_over)

    def _turn_over(self) -> None:
        self._turn = None

    def _start_log(self) -> StartLog | None:
        if not self._made:
            client = self.client
            self._made = True
            if client.execute:  # others must see a run at once to take it up
                self._log = client.store.start_log(client.owner)
        return self._log

    @property
    def unsettled(self) -> bool:
        """Whether starts acknowledged through the log are not all committed yet."""
        return bool(self.pending) or self._task is not None

    async def landed(self, *, strict: bool = True) -> None:
        """Wait until the starts acknowledged so far are committed. If committing them failed (they
        stay in the start log and are tried again), raises :class:`StoreError` saying so, unless not
        ``strict``: a call that does not read those runs goes on (a kill switch, a list, another run)."""
        if not strict and self._failed is not None:  # failing: retried on its own schedule, not by every call
            return
        if self.pending and self._task is None:  # a retry is due later: try now
            self._task = asyncio.get_running_loop().create_task(self._flush())
        while self._task is not None:
            await asyncio.shield(self._task)
        if strict and self._failed is not None and self.pending:
            where = self._log.folder if self._log is not None else "?"
            raise StoreError(
                f"{len(self.pending)} run(s) started by this engine are in its start log ({where}) but not in the "
                f"store yet: {self._failed}; they are tried again, and created by the next engine that opens the "
                "store if this one stops"
            ) from self._failed

    def holds(self, run_id: str) -> bool:
        """Whether run ``run_id`` was started here and is not committed yet."""
        return any(start[1].id == run_id for start in self.pending)

    async def _flush(self) -> None:
        try:
            while self.pending:
                assert self._log is not None
                cut = self._log.cut()
                if cut is not None:
                    self._cuts.append(cut)
                batch, self.pending = self.pending, []
                try:
                    await self._commit(batch)  # takes each part off ``batch`` once committed
                except Exception as exc:  # kept in the log; tried again (or by the next engine)
                    self._failed = exc
                    self.pending[:0] = batch
                    log.warning("committing %d run start(s) of the start log failed: %s; retrying", len(batch), exc)
                    self._retry = asyncio.get_running_loop().call_later(self._delay, self._again)
                    self._delay = min(self._delay * 2, 2.0)
                    return
                self._failed, self._delay = None, 0.05
                if not self.pending:  # every start of these files is committed
                    for c in self._cuts:
                        self._log.done(c)
                    self._cuts.clear()
        finally:
            self._task = None

    def _again(self) -> None:
        self._retry = None
        if self.pending and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _commit(self, batch: list[_Start]) -> None:
        client = self.client
        while batch:
            part = batch[:BATCH]
            created = await client.store.create_runs([(run, [first], anchor) for _, run, first, anchor, _ in part])
            del batch[:BATCH]
            for (wf, run, first, anchor, admitted), new in zip(part, created, strict=True):
                if not new:  # a run id drawn twice (not expected): nothing of this start was written
                    if admitted:
                        client.driving.release()
                    log.error("run %s of the start log already existed; its start was not written again", run.id)
                    continue
                if anchor is not None:
                    client.governance.announce(anchor)
                client.drive_run(wf, run, [first], admitted=admitted)
                for listener in client.listeners:
                    with contextlib.suppress(Exception):
                        listener(first)

    async def close(self) -> None:
        """Commit what is pending (bounded); leave the rest in the start log for the next engine."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self.pending and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush())
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._task), 10)
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(BaseException):
                    await self._task
        if self.pending:
            log.warning(
                "%d run start(s) were not committed before this engine stopped; the next engine that opens "
                "the store creates them from the start log", len(self.pending),
            )  # fmt: skip
        for slot in self.pending:
            if slot[4]:
                self.client.driving.release()
        self.pending.clear()
        start_log = self._log
        if start_log is not None:
            for c in self._cuts:
                start_log.release(c)
            self._cuts.clear()
            start_log.close()

    async def recover(self, *, sweep: bool = False) -> int:
        """Create the runs named by the start logs of engines that stopped (held by their dead
        engine, so resumed as its other runs are): at open, before the open's own resume of such
        runs, and every :data:`SWEEP_SECONDS` from the sweep. Returns how many were created."""
        if sweep:
            if time.monotonic() < self._next_sweep:
                return 0
            self._next_sweep = time.monotonic() + SWEEP_SECONDS
        client = self.client
        folder = client.store.start_log_folder()
        if folder is None or not os.path.isdir(folder):
            return 0
        created = 0
        try:
            for path, runs, bad, fd in orphans(folder, client.store.audit_keys):
                created += await self._replay(path, runs, bad, fd)
        except OSError as exc:  # an unreadable folder: tried again at the next sweep
            log.error("reading the start logs in %s failed: %s; tried again later", folder, exc)
        if created:
            with contextlib.suppress(Exception):
                await client.events.notify_work()
        return created

    async def _replay(self, path: str, runs: list[NewRun], bad: list[str], fd: int | None) -> int:
        """Create the runs of one stopped engine's log (the file is locked here), audit what was
        refused, then delete it, or set it aside in ``refused/`` if a line was refused. A run not in
        the store whose id the audit log already names was started once and is gone (ended, then
        pruned or erased): an old line put back; it is refused, not created again."""
        client = self.client
        try:
            runs = await self._not_gone(path, runs, bad)
            new = 0
            for i in range(0, len(runs), BATCH):
                part = runs[i : i + BATCH]
                made = await client.store.create_runs(part)
                new += sum(made)
                await self._release([run for (run, _, _), m in zip(part, made, strict=True) if m])
            if runs:
                await client.governance.record("startlog.replay", path, actor="engine", runs=len(runs), created=new)
                log.warning("start log %s of an engine that stopped: %d run(s) created, to be resumed", path, new)
            if bad:
                aside = set_aside(path)
                log.error("start log %s: %d line(s) refused (%s); the file is kept as %s", path, len(bad), "; ".join(bad[:3]), aside)
                await client.governance.record("startlog.refuse", path, actor="engine", lines=bad[:20], refused=len(bad), kept=aside)
            else:
                os.unlink(path)
            return new
        except Exception as exc:  # the file stays: tried again at the next sweep or open
            log.error("replaying the start log %s failed: %s; it is tried again later", path, exc)
            return 0
        finally:
            if fd is not None:
                os.close(fd)

    async def _release(self, runs: list[RunRecord]) -> None:
        """Hand the runs just created from a log back at once: no engine ever drove them (their engine
        is gone, dead or closed, or it would hold its log's lock), and one that closed in a process
        still alive, or on another host, would keep them leased until the lease ran out."""
        owners: dict[str, list[str]] = {}
        for run in runs:
            if run.owner is not None:  # running or queued (pending): both leased to their engine
                owners.setdefault(run.owner, []).append(run.id)
        for owner, ids in owners.items():
            await self.client.store.release_runs(owner, ids)

    async def _not_gone(self, path: str, runs: list[NewRun], bad: list[str]) -> list[NewRun]:
        store = self.client.store
        kept: list[NewRun] = []
        for item in runs:
            rid = item[0].id
            if await store.get_run(rid) is None and await store.audit_for(rid):
                bad.append(
                    f"{os.path.basename(path)}: run {rid} was started before and is gone (ended, then pruned or "
                    "erased): an old line, not created again, refused"
                )  # fmt: skip
            else:
                kept.append(item)
        return kept
