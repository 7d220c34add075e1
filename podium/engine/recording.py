"""The recording half of :class:`~podium.engine.executor.RunExecutor` (mixed into it): every
event of a run is written here, in sequence order, with the digest of the run's history that its
``run.end`` audit anchor covers. A step's event is written at once where the store can (one
statement, no coroutine); the run's last step's completion is held back and written with the
run's end, in one transaction."""

from __future__ import annotations

import asyncio
import logging
import time
import types
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import LeaseLost
from ..governance.audit import event_bytes
from ..records import Event, EventType, RunRecord

if TYPE_CHECKING:
    from ..storage import Store
    from ..storage._base import EventRow
    from .ports import RunHost
    from .workflow import Workflow

log = logging.getLogger("podium.engine")

_Key = tuple[str, int, int | None]
_Item = tuple[str, str | None, int, int | None, int, str | None]
"""An event to write: (type, step, iteration, index, attempt, data)."""


NO_SET: Any = frozenset()
"""The empty set every executor starts with for what most runs never note (steps marked running,
loop decisions replayed, labels handed off, approvals asked, parallel tasks): one object shared
until an executor writes to it, not one each, so a process holding many live runs gives the
garbage collector fewer objects to go through."""
EMPTY: Any = types.MappingProxyType({})
"""The empty mapping an executor starts with for what few runs write (prompt pins, a loop's earlier
outputs, ...): read like a dict, never written; its one writer puts a dict of the run's own first."""


class Recording:
    """Writes a run's events (mixed into the executor, which sets these attributes)."""

    client: RunHost
    store: Store
    wf: Workflow
    run_id: str
    reason: str | None
    running: dict[_Key, tuple[float, int]]
    _marked: set[tuple[_Key, int]]
    _at_once: Callable[..., bool]
    _listeners: list[Callable[[Event], None]]
    _seq: int
    _digest: Any  # hashlib's sha256 object
    _held: _Item | None
    _renew_after: float
    _lost: LeaseLost | None = None
    """A write of this run refused here (another engine owns it): every later one is refused too,
    unwritten, a step finishing after it in a later turn of the loop included (it would land after
    the other engine's events)."""

    def _refused(self, exc: LeaseLost) -> None:
        """Note ``exc``: a write of this run was refused (its caller raises it)."""
        if self._lost is None:
            self._lost = exc

    def _still_ours(self) -> None:
        """Raise :class:`LeaseLost` if a write of this run was refused here already."""
        if self._lost is not None:
            raise LeaseLost(f"run {self.run_id}: not written, an earlier write of this engine was refused ({self._lost})")

    def lease_renewed(self, until: float) -> None:
        """This engine's lease on the run holds until ``until`` (wall clock, as written to the
        store): a step that starts once less than half the lease is left renews it first."""
        self._renew_after = until - self.client.lease_seconds / 2

    async def keep_lease(self) -> None:
        """Renew the run's lease before a step starts, when the engine's sweep has not renewed it
        in time: its event loop stalled, or its process was paused (SIGSTOP, a VM frozen) and has
        just woken. Another engine may have taken the run over meanwhile; then no step may start
        here (only one already running when the pause began goes on: docs/durability.md), and
        :class:`LeaseLost` stops this engine driving the run."""
        client, now = self.client, time.time()
        kept = await self.store.renew_leases(client.owner, [self.run_id], lease_seconds=client.lease_seconds, now=now)
        if self.run_id not in kept:
            lost = LeaseLost(
                f"run {self.run_id}: its lease ran out while this engine was paused or stalled, and another "
                "engine holds the run now"
            )
            self._refused(lost)
            raise lost
        self.lease_renewed(now + client.lease_seconds)

    def _emit_now(self, type: str, step: str, iteration: int, index: int | None, attempt: int, data: str) -> bool:
        """:meth:`emit` of a step's event, made at once if the store can (no listeners, no run
        update); False: nothing was recorded, call :meth:`emit`."""
        if self._listeners or self._held is not None or self._lost is not None:
            return False
        seq = self._seq + 1
        ts = time.time()
        try:
            if not self._at_once(self.run_id, seq, type, ts, step, iteration, index, attempt, data):
                return False
        except LeaseLost as exc:
            self._refused(exc)
            raise
        self._seq = seq
        # event_bytes(), inline: the step's hot path
        self._digest.update(f"{seq}\x1f{type}\x1f{ts!r}\x1f{step}\x1f{iteration}\x1f{index}\x1f{attempt}\x1f{data}\x1e".encode())
        return True

    async def emit(
        self,
        type: str,
        step: str | None = None,
        iteration: int = 0,
        index: int | None = None,
        attempt: int = 0,
        data: str | None = None,
        run_update: dict[str, Any] | None = None,
        end: RunRecord | None = None,
    ) -> int | None:
        """Record one event; with ``end`` (the run's record as it ends), also its ``run.end`` audit
        anchor, in the same transaction as the event and ``run_update`` (and the last step's
        completion held back for it). Returns the event's ``seq`` (None with ``end``)."""
        if self._lost is not None:
            self._still_ours()
        held = self._held
        if held is not None and end is None:
            self._held = None
            await self._emit_all([held])  # written first: the log keeps the order things happened in
        if end is not None:
            seq0, before = self._seq, self._digest.copy()
            self._held = None
            # The digest follows sequence order, so it is updated before the (possibly concurrent) write.
            evs = self._numbered([*([held] if held is not None else []), (type, None, 0, None, 0, data)])
            governance = self.client.governance
            anchor = governance.run_end_entry(end, self.wf.name, self._digest.hexdigest(), self._seq)
            try:
                await self.store.append(evs, run_update, audit=anchor)
            except asyncio.CancelledError:
                # This end was not written, or lands from a group already under way: the next
                # end (the cancellation's) takes the same seqs (with the same held step), so
                # exactly one of them is stored (the other finds the seq taken), no hole under it.
                self._seq, self._digest, self._held = seq0, before, held
                raise
            except BaseException as exc:
                self._held = held  # not written: a later end (the failure's) writes it
                if isinstance(exc, LeaseLost):
                    self._refused(exc)
                raise
            if anchor is not None:
                governance.announce(anchor)
            self._tell(evs)
            return None
        self._seq = seq = self._seq + 1
        ts = time.time()
        self._digest.update(event_bytes(seq, type, ts, step, iteration, index, attempt, data))
        if run_update is None and not self._listeners:
            # The hot path of every step: no Event object, one INSERT (made at once if the store can).
            try:
                if not self._at_once(self.run_id, seq, type, ts, step, iteration, index, attempt, data):
                    await self.store.append_one(self.run_id, seq, type, ts, step, iteration, index, attempt, data)
            except LeaseLost as exc:
                self._refused(exc)
                raise
            return seq
        ev = Event(
            run_id=self.run_id,
            seq=seq,
            type=type,
            ts=ts,
            step=step,
            iteration=iteration,
            index=index,
            attempt=attempt,
            data=data,
        )
        try:
            await self.store.append((ev,), run_update)
        except LeaseLost as exc:
            self._refused(exc)
            raise
        self._tell((ev,))
        return seq

    def _tell(self, evs: Sequence[Event]) -> None:
        """Pass events just written to the client's listeners (live views)."""
        for ev in evs:
            for fn in self._listeners:
                try:
                    fn(ev)
                except Exception:  # a listener must never break a run
                    log.exception("event listener failed")

    def to_mark(self, limit: float) -> bool:
        """Whether a step attempt started before ``limit`` is not recorded as running yet (the
        engine's sweep asks every run it drives: no coroutine for the many that have none)."""
        marked = self._marked
        return any(t0 <= limit and (key, attempt) not in marked for key, (t0, attempt) in self.running.items())

    async def mark_started(self, older_than: float) -> None:
        """Record as running the step attempts that started more than ``older_than`` seconds ago
        and are not recorded yet, so that other processes see long steps as running."""
        limit = time.time() - older_than
        for key, (t0, attempt) in list(self.running.items()):
            # Checked again at each one: an earlier write awaited, and the run may be stopping (its
            # attempts recorded as cancelled) since; a late "started" would outlive the cancellation.
            if self.reason is not None or self.running.get(key) != (t0, attempt):
                continue
            if t0 <= limit and (key, attempt) not in self._marked:
                if self._marked is NO_SET:
                    self._marked = set()
                self._marked.add((key, attempt))
                await self.emit(
                    EventType.STEP_STARTED, key[0], key[1], key[2], attempt, f'{{"started":{t0!r}}}'
                )

    async def _emit_all(self, items: list[tuple[str, str | None, int, int | None, int, str | None]]) -> None:
        """Record events (type, step, iteration, index, attempt, data) of this run in one transaction
        (a caller tries :meth:`_all_now` first: no coroutine where they are written at once)."""
        if self._lost is not None:
            self._still_ours()
        if self._held is not None:  # the completion held back for the end goes first
            items, self._held = [self._held, *items], None
        if len(items) <= 1:
            for item in items:
                await self.emit(*item)
            return
        try:
            evs = self._numbered(items)
            await self.store.append(evs)
        except LeaseLost as exc:
            self._refused(exc)
            raise
        self._tell(evs)

    def _all_now(self, items: Sequence[_Item]) -> bool:
        """Events of this run written at once, all or none, if the store can (a loop pass: the
        step's completion and the decision), without a coroutine; False: nothing was recorded
        (something held back, a listener, a write refused: written otherwise, by :meth:`_emit_all`)."""
        if len(items) < 2 or self._held is not None or self._lost is not None or self._listeners:
            return False
        rows = self._rows(items)
        try:
            if not self.store.append_rows_at_once(rows):
                return False
        except LeaseLost as exc:
            self._refused(exc)
            raise
        self._count(rows)
        return True

    def _numbered(self, items: Sequence[_Item]) -> list[Event]:
        """Events of this run for ``items``, given the next seqs and added to the digest."""
        rows = self._rows(items)
        self._count(rows)
        return [
            Event(run_id=r[0], seq=r[1], type=r[2], ts=r[3], step=r[4], iteration=r[5], index=r[6], attempt=r[7], data=r[8])
            for r in rows
        ]

    def _rows(self, items: Sequence[_Item]) -> list[EventRow]:
        """``items`` as rows of this run with the next seqs (not counted yet: :meth:`_count`), all
        with the time of their one write."""
        seq, run_id, ts = self._seq, self.run_id, time.time()
        rows: list[EventRow] = []
        for type, step, iteration, index, attempt, data in items:
            seq += 1
            rows.append((run_id, seq, type, ts, step, iteration, index, attempt, data))
        return rows

    def _count(self, rows: Sequence[EventRow]) -> None:
        """Rows written (or about to be, in order): their seqs taken, their bytes in the digest."""
        self._seq = rows[-1][1]
        update, last, when = self._digest.update, None, ""
        for _, seq, type, ts, step, iteration, index, attempt, data in rows:  # event_bytes(), inline
            if ts is not last:  # the rows of one write share their time: its repr made once
                last, when = ts, repr(ts)
            update(f"{seq}\x1f{type}\x1f{when}\x1f{step}\x1f{iteration}\x1f{index}\x1f{attempt}\x1f{data}\x1e".encode())
