"""In-memory store: for tests and notebooks. Nothing survives the process."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

from .._redact import note_erasure, redact_stored, stored_forms
from ..errors import LeaseLost, NotFound
from ..records import ANCHOR_CHAIN, GENESIS, GOVERNING_ACTIONS, AuditEntry, Event, RunRecord, RunStatus
from ._audit import ChainedAudit, Sign
from ._base import (
    APPROVAL_SIGNAL,
    MAX_APPROVALS_PAGE,
    UPDATABLE,
    EventRow,
    OpenApproval,
    PruneRecord,
    Redaction,
    RedactRecord,
    Store,
    approval_asked,
    pick_fair,
    wait_ended,
)

_UNFINISHED = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING)


class MemoryStore(ChainedAudit, Store):
    """Keeps runs and events in dicts. Copies records in and out so callers never share state."""

    in_process = True

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._runs: dict[str, RunRecord] = {}
        self._events: dict[str, list[Event]] = {}
        self._signals: dict[str, dict[str, str | None]] = {}
        self._work: asyncio.Event | None = None
        self._audit: list[AuditEntry] = []
        self._kv: dict[str, dict[str, str]] = {}
        self._approvals: dict[tuple[str, str], Event] = {}
        """The open approval requests by (run id, name): the event that asked (see open_approvals)."""

    async def wait_for_work(self, timeout: float) -> None:
        if self._work is None:
            self._work = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._work.wait(), timeout)
        self._work.clear()

    async def notify_work(self) -> None:
        if self._work is not None:
            self._work.set()

    async def create_run(self, run: RunRecord, events: Sequence[Event] = (), *, audit: AuditEntry | None = None) -> bool:
        if run.id in self._runs:
            return False
        if audit is not None:
            async with self._chained(audit) as entry:
                if run.id in self._runs:  # created while this waited for the chain
                    return False
                self._create(run, events)
                await self._audit_insert(entry, self._sign)
            return True
        self._create(run, events)
        return True

    def _create(self, run: RunRecord, events: Sequence[Event]) -> None:
        self._runs[run.id] = dataclasses.replace(run)
        self._events[run.id] = []
        if events:
            try:
                self._append(events, None)
            except BaseException:  # all or nothing, like the other stores' transaction
                del self._runs[run.id], self._events[run.id]
                raise

    async def append(
        self, events: Sequence[Event], run_update: dict[str, Any] | None = None, *, audit: AuditEntry | None = None
    ) -> None:
        if audit is not None:
            async with self._chained(audit) as entry:
                self._append(events, run_update)
                await self._audit_insert(entry, self._sign)  # no await point before it: one step
            return
        self._append(events, run_update)

    def _append(self, events: Sequence[Event], run_update: dict[str, Any] | None) -> None:
        if events:
            log = self._events.get(events[0].run_id)
            if log is None:
                raise NotFound(f"run {events[0].run_id} does not exist")
            last = log[-1].seq if log else 0
            for ev in events:
                if ev.seq <= last:
                    raise LeaseLost(
                        f"event {ev.seq} of run {ev.run_id} already written: another engine owns it"
                    )
                last = ev.seq
            log.extend(events)
            run_id = events[0].run_id
            for ev in events:
                self._track(ev)
        if run_update:
            if not events:
                raise ValueError("run_update needs at least one event")
            run = self._runs[run_id]
            for name, value in run_update.items():
                if name not in UPDATABLE:
                    raise ValueError(f"cannot update run field {name!r}")
                setattr(run, name, value)
            if run.status.finished or run.status is RunStatus.WAITING:
                run.owner = None
                run.lease_expires_at = None
            if run.status.finished:
                self._close_approvals(run_id)

    def _track(self, ev: Event) -> None:
        """Open or close the approval request ``ev`` asks for or ends (the SQL stores' triggers)."""
        if (name := approval_asked(ev.type, ev.data)) is not None:
            run = self._runs[ev.run_id]
            if not run.status.finished and name not in self._signals.get(ev.run_id, {}):
                self._approvals.setdefault((ev.run_id, name), ev)
        elif (name := wait_ended(ev.type, ev.step, ev.data)) is not None:
            self._approvals.pop((ev.run_id, name), None)

    def _close_approvals(self, run_id: str) -> None:
        for key in [k for k in self._approvals if k[0] == run_id]:
            del self._approvals[key]

    def append_at_once(
        self,
        run_id: str,
        seq: int,
        type: str,
        ts: float,
        step: str | None,
        iteration: int,
        index: int | None,
        attempt: int,
        data: str | None,
    ) -> bool:
        log = self._events.get(run_id)
        if log is None:
            raise NotFound(f"run {run_id} does not exist")
        if log and log[-1].seq >= seq:
            raise LeaseLost(f"event {seq} of run {run_id} already written: another engine owns it")
        ev = Event(run_id=run_id, seq=seq, type=type, ts=ts, step=step, iteration=iteration, index=index, attempt=attempt, data=data)
        log.append(ev)
        if type in ("step_waiting", "step_completed"):
            self._track(ev)
        return True

    def append_rows_at_once(self, rows: Sequence[EventRow]) -> bool:
        run_id = rows[0][0]
        log = self._events.get(run_id)
        if log is None:
            raise NotFound(f"run {run_id} does not exist")
        last = log[-1].seq if log else 0
        for r in rows:  # all or none: every seq new and in order before any is written
            if r[1] <= last:
                raise LeaseLost(f"event {r[1]} of run {run_id} already written: another engine owns it")
            last = r[1]
        for r in rows:
            ev = Event(run_id=r[0], seq=r[1], type=r[2], ts=r[3], step=r[4], iteration=r[5], index=r[6], attempt=r[7], data=r[8])
            log.append(ev)
            if ev.type in ("step_waiting", "step_completed"):
                self._track(ev)
        return True

    async def get_run(self, run_id: str) -> RunRecord | None:
        run = self._runs.get(run_id)
        return dataclasses.replace(run) if run else None

    async def existing_runs(self, run_ids: Sequence[str]) -> set[str]:
        return {rid for rid in run_ids if rid in self._runs}

    async def list_runs(
        self,
        *,
        workflow: str | None = None,
        status: Sequence[RunStatus] | None = None,
        parent_run_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
        before: tuple[float, str] | None = None,
    ) -> list[RunRecord]:
        rows = [
            r
            for r in self._runs.values()
            if (workflow is None or r.workflow == workflow)
            and (status is None or r.status in status)
            and (parent_run_id is None or r.parent_run_id == parent_run_id)
            and (before is None or (r.created_at, r.id) < before)
        ]
        rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return [dataclasses.replace(r) for r in rows[offset : offset + limit]]

    async def load_events(self, run_id: str, *, after: int = 0) -> list[Event]:
        return [dataclasses.replace(e) for e in self._events.get(run_id, ()) if e.seq > after]

    async def claim_runs(
        self,
        owner: str,
        *,
        lease_seconds: float,
        limit: int,
        now: float,
        run_ids: Sequence[str] | None = None,
        steal_from: Sequence[str] = (),
        queues: Sequence[str] | None = None,
        labels: Sequence[str] | None = None,
        queue_limits: dict[str, int] | None = None,
        due_by: float | None = None,
        skip: Sequence[str] = (),
        skip_versions: Sequence[tuple[str, str, str]] = (),
    ) -> list[RunRecord]:
        wanted = set(run_ids) if run_ids is not None else None
        skipped, versions = set(skip), set(skip_versions)

        def held(r: RunRecord) -> bool:
            return r.owner is not None and (r.lease_expires_at or 0) >= now and r.status in _UNFINISHED

        per_queue: dict[Any, int] = {}
        per_tenant: dict[Any, int] = {}
        per_workflow: dict[Any, int] = {}
        for r in self._runs.values():
            if held(r):
                per_queue[r.queue] = per_queue.get(r.queue, 0) + 1
                per_tenant[r.tenant] = per_tenant.get(r.tenant, 0) + 1
                per_workflow[r.workflow] = per_workflow.get(r.workflow, 0) + 1

        def ready(r: RunRecord) -> bool:
            if r.status is RunStatus.WAITING:
                return r.cancel_requested or (r.wake_at is not None and r.wake_at <= (now if due_by is None else due_by))
            return r.status in (RunStatus.PENDING, RunStatus.RUNNING)

        candidates = sorted(
            (
                r
                for r in self._runs.values()
                if ready(r)
                and (wanted is None or r.id in wanted)
                and r.id not in skipped
                and (r.workflow, r.version, r.workflow_ref or "") not in versions
                and (queues is None or r.queue in queues)
                and (r.owner is None or (r.lease_expires_at or 0) < now or r.owner in steal_from)
            ),
            key=lambda r: (-r.priority, r.created_at, r.id),
        )
        rows = [(r.id, r.queue, r.tenant, r.labels, r.priority, r.workflow) for r in candidates]
        held_counts: dict[str, dict[Any, int]] = {"tenant": per_tenant, "workflow": per_workflow, "queue": per_queue}
        claimed: list[RunRecord] = []
        for rid in pick_fair(rows, limit=limit, labels=labels, queue_limits=queue_limits, held=held_counts):
            run = self._runs[rid]
            run.owner = owner
            run.lease_expires_at = now + lease_seconds
            if run.status is RunStatus.WAITING:
                run.status = RunStatus.RUNNING
                run.wake_at = None
            claimed.append(dataclasses.replace(run))
        return claimed

    async def renew_leases(
        self, owner: str, run_ids: Sequence[str], *, lease_seconds: float, now: float
    ) -> set[str]:
        kept = set()
        for rid in run_ids:
            run = self._runs.get(rid)
            if run is not None and run.owner == owner:
                run.lease_expires_at = now + lease_seconds
                kept.add(rid)
        return kept

    async def release_runs(self, owner: str, run_ids: Sequence[str]) -> None:
        for rid in run_ids:
            run = self._runs.get(rid)
            if run is not None and run.owner == owner:
                run.owner = None
                run.lease_expires_at = None
        await self.notify_work()

    async def request_cancel(self, run_id: str) -> None:
        run = self._runs.get(run_id)
        if run is None:
            raise NotFound(f"run {run_id} does not exist")
        if run.status in _UNFINISHED:
            run.cancel_requested = True

    async def cancel_requests(self, run_ids: Sequence[str]) -> list[str]:
        # an ended run keeps its mark (it ended before it saw it): no request is pending
        return [rid for rid in run_ids if (r := self._runs.get(rid)) is not None and r.cancel_requested and not r.status.finished]

    async def send_signal(
        self,
        run_id: str,
        name: str,
        payload: str | None,
        *,
        now: float,
        request: int | None = None,
        copied: bool = False,
    ) -> bool:
        run = self._runs.get(run_id)
        if run is None:
            raise NotFound(f"run {run_id} does not exist")
        box = self._signals.setdefault(run_id, {})
        if name in box:
            return False
        if not copied and name.startswith(APPROVAL_SIGNAL):
            asked = self._approvals.get((run_id, name))
            if asked is None or (request is not None and asked.seq != request):
                return False  # no longer open (timed out), or a later request of the same name
        box[name] = payload
        self._approvals.pop((run_id, name), None)
        if run.status is RunStatus.WAITING:
            run.wake_at = now if run.wake_at is None else min(run.wake_at, now)
        await self.notify_work()
        return True

    async def close_request(self, run_id: str, signal: str) -> bool:
        if signal in self._signals.get(run_id, {}):
            return False
        self._approvals.pop((run_id, signal), None)
        return True

    async def get_signals(self, run_id: str) -> dict[str, str | None]:
        return dict(self._signals.get(run_id, {}))

    async def open_approvals(
        self,
        *,
        run_id: str | None = None,
        workflow: str | None = None,
        after: tuple[float, str, str] | None = None,
        limit: int = 100,
    ) -> list[OpenApproval]:
        found = sorted(
            (ev.ts, rid, name)
            for (rid, name), ev in self._approvals.items()
            if (run_id is None or rid == run_id)
            and (workflow is None or self._runs[rid].workflow == workflow)
            and (after is None or (ev.ts, rid, name) > after)
        )[: min(limit, MAX_APPROVALS_PAGE)]
        out = []
        for _, rid, name in found:
            log, seq = self._events[rid], self._approvals[(rid, name)].seq
            ev = log[bisect.bisect_left(log, seq, key=lambda e: e.seq)]  # as stored now (redacted...)
            out.append(OpenApproval(workflow=self._runs[rid].workflow, name=name, event=dataclasses.replace(ev)))
        return out

    async def _audit_insert(self, e: AuditEntry, sign: Sign) -> None:
        e.seq = len(self._audit) + 1
        sign(e)
        self._audit.append(e)

    async def _audit_chain_head(self, chain: str) -> tuple[int, str] | None:
        last = next((a for a in reversed(self._audit) if a.chain == chain), None)
        return (last.cseq, last.hash) if last else None

    async def _audit_insert_anchor(self, e: AuditEntry, sign: Sign) -> None:
        last = next((a for a in reversed(self._audit) if a.chain == ANCHOR_CHAIN), None)
        e.cseq, e.prev_hash = (last.cseq + 1, last.hash) if last else (1, GENESIS)
        await self._audit_insert(e, sign)

    async def list_audit(self, *, after: int = 0, limit: int = 1000) -> list[AuditEntry]:
        return [dataclasses.replace(e) for e in self._audit if e.seq > after][:limit]

    async def governing_entries(self) -> list[AuditEntry]:
        return [dataclasses.replace(e) for e in self._audit if e.action in GOVERNING_ACTIONS]

    async def kv_put(self, namespace: str, key: str, value: str | None) -> None:
        ns = self._kv.setdefault(namespace, {})
        if value is None:
            ns.pop(key, None)
        else:
            ns[key] = value

    async def kv_get(self, namespace: str, key: str) -> str | None:
        return self._kv.get(namespace, {}).get(key)

    async def kv_list(self, namespace: str) -> dict[str, str]:
        return dict(self._kv.get(namespace, {}))

    async def kv_incr(self, namespace: str, key: str, amount: float) -> float:
        ns = self._kv.setdefault(namespace, {})
        total = float(ns.get(key) or 0) + amount
        ns[key] = repr(total)
        return total

    async def kv_swap(self, namespace: str, key: str, expected: str | None, value: str | None) -> bool:
        ns = self._kv.setdefault(namespace, {})
        if ns.get(key) != expected:
            return False
        if value is None:
            ns.pop(key, None)
        else:
            ns[key] = value
        return True

    async def unfinished_owners(self) -> list[str]:
        return sorted({r.owner for r in self._runs.values() if r.status in _UNFINISHED and r.owner})

    async def finished_run_ids(self, *, before: float) -> list[str]:
        done = sorted(
            (r.finished_at, r.id)
            for r in self._runs.values()
            if r.status.finished and r.finished_at is not None and r.finished_at < before
        )
        return [rid for _, rid in done]

    async def delete_runs(self, run_ids: Sequence[str], *, record: PruneRecord | None = None) -> list[str]:
        note_erasure()  # what an engine of this process kept of them is read again (and found gone)
        doomed = [rid for rid in dict.fromkeys(run_ids) if (r := self._runs.get(rid)) is not None and r.status.finished]
        if record is not None and doomed:
            async with self._chained_many() as place:  # the records first: a failure deletes nothing
                with self._audit_undone():
                    for rid in doomed:
                        await self._audit_insert(place(record(rid)), self._sign)
        for rid in doomed:  # no await point from here on: one step, as the other stores' transaction
            del self._runs[rid]
            self._events.pop(rid, None)
            self._signals.pop(rid, None)
            self._close_approvals(rid)
        return doomed

    async def redact_payloads(
        self, texts: Sequence[str], replacement: str, *, record: RedactRecord | None = None
    ) -> Redaction:
        if record is None:
            return self._redact(texts, replacement)
        async with self._chained_many() as place:
            payloads = {rid: (r.input, r.output, r.error) for rid, r in self._runs.items()}
            events = {rid: list(log) for rid, log in self._events.items()}
            signals = {rid: dict(box) for rid, box in self._signals.items()}
            out = self._redact(texts, replacement)
            try:
                with self._audit_undone():  # _audit_insert has no await point: nothing runs in between
                    for rid in out.run_ids:
                        entry = place(record(rid, self._runs.get(rid), self._events.get(rid, [])))
                        await self._audit_insert(entry, self._sign)
            except BaseException:  # all or nothing, like the other stores' transaction
                for rid in out.run_ids:
                    if rid in self._runs:
                        run = self._runs[rid]
                        run.input, run.output, run.error = payloads[rid]
                    if rid in self._events:
                        self._events[rid][:] = events[rid]
                    if rid in self._signals:
                        self._signals[rid].clear()
                        self._signals[rid].update(signals[rid])
                raise
        return out

    @contextlib.contextmanager
    def _audit_undone(self) -> Iterator[None]:
        """Entries appended inside the block are taken back if it fails (a transaction's rollback)."""
        n = len(self._audit)
        try:
            yield
        except BaseException:
            del self._audit[n:]
            raise

    def _redact(self, texts: Sequence[str], replacement: str) -> Redaction:
        note_erasure()  # what an engine of this process kept from before is read again
        forms = stored_forms(texts)
        out = Redaction()
        touched: set[str] = set()

        def scrub(value: str | None, run_id: str) -> tuple[str | None, int]:
            if value is None or not any(f in value for f in forms):
                return value, 0
            new, hits = redact_stored(value, texts, replacement)
            if hits:
                touched.add(run_id)
            return new, hits

        for run in self._runs.values():
            for col in ("input", "output", "error"):
                new, hits = scrub(getattr(run, col), run.id)
                if hits:
                    setattr(run, col, new)
                    out.runs += hits
        for run_id, log in self._events.items():
            for i, ev in enumerate(log):
                data, hits = scrub(ev.data, run_id)
                if hits:
                    log[i] = dataclasses.replace(ev, data=data)
                    out.events += hits
        for run_id, box in self._signals.items():
            for name, payload in box.items():
                box[name], hits = scrub(payload, run_id)
                out.signals += hits
        out.run_ids = sorted(touched)
        return out
