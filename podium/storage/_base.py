"""The store interface every backend implements (memory, SQLite, PostgreSQL).

A store keeps two things: the runs table (one row per run, its status and lease) and each run's
append-only event log. The event log is the source of truth for steps; the runs row is a summary
updated in the same transaction as the events that change it.

Writers are fenced: each event has a per-run sequence number and ``(run_id, seq)`` is unique, so an
engine that lost its lease and writes a stale sequence number gets :class:`LeaseLost` instead of
corrupting the log. Every backend passes ``tests/store_conformance.py``.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import json
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .._auditkey import AuditKeys, store_identity
from .._redact import redact_stored
from ..errors import StoreError
from ..records import GOVERNING_ACTIONS, AuditEntry, Event, RunRecord, RunStatus, governing_stamps
from ._identity import bind
from ._names import Placement, in_schema


class StartLog(Protocol):
    """An engine's log of the run starts it acknowledges before their rows commit
    (``podium/storage/_startlog.py``, ``podium/engine/bursts.py``)."""

    folder: str

    def add(self, run: RunRecord, first: Event, anchor: AuditEntry | None) -> None: ...

    def cut(self) -> tuple[int, str] | None: ...

    def done(self, cut: tuple[int, str]) -> None: ...

    def release(self, cut: tuple[int, str]) -> None: ...

    def close(self) -> None: ...

EventRow = tuple[str, int, str, float, "str | None", int, "int | None", int, "str | None"]
"""An event as a row: (run_id, seq, type, ts, step, iteration, index, attempt, data)."""

#: Runs-table fields that :meth:`Store.append` may update.
UPDATABLE = frozenset({"status", "output", "error", "started_at", "finished_at", "wake_at", "labels"})

#: Statuses an engine may claim (``waiting`` only once its ``wake_at`` has passed).
CLAIMABLE = ("pending", "running")

#: Final statuses: runs that :meth:`Store.finished_run_ids` lists and :meth:`Store.delete_runs` deletes.
FINISHED = ("completed", "failed", "cancelled")


PruneRecord = Callable[[str], AuditEntry]
"""The audit entry that records the deletion of one run (:meth:`Store.delete_runs`)."""
RedactRecord = Callable[[str, RunRecord | None, list[Event]], AuditEntry]
"""The audit entry that records one run's redaction, from its id, record and events as changed
(:meth:`Store.redact_payloads`)."""


@dataclass(kw_only=True)
class Redaction:
    """What :meth:`Store.redact_payloads` changed. Each count adds, for every text and column, the
    rows in which that text was replaced (a row holding two of the texts counts twice)."""

    runs: int = 0
    """Replacements in runs' ``input``, ``output`` and ``error``."""
    events: int = 0
    """Replacements in events' ``data``."""
    signals: int = 0
    """Replacements in signals' ``payload``."""
    run_ids: list[str] = field(default_factory=list)
    """The runs whose row, events or signals changed, sorted."""


@dataclass(frozen=True, kw_only=True, slots=True)
class OpenApproval:
    """An approval request nobody has decided yet (:meth:`Store.open_approvals`)."""

    workflow: str
    """The workflow of the run that asks."""
    name: str
    """The approval's signal name (what decides it)."""
    event: Event
    """The ``step_waiting`` event that asked: its ``ts`` is when, its ``data`` the request."""


#: The most approval requests :meth:`Store.open_approvals` answers at once.
MAX_APPROVALS_PAGE = 1000


def approvals_query(
    mark: str, run_id: str | None, workflow: str | None, after: tuple[float, str, str] | None, limit: int
) -> tuple[str, list[Any]]:
    """The SQL (with ``mark`` as its placeholder: ``?`` or ``%s``) and parameters of
    :meth:`Store.open_approvals` on the ``approvals`` table: the request's workflow and name,
    then its ``step_waiting`` event's columns."""
    where: list[str] = ["NOT EXISTS (SELECT 1 FROM signals s WHERE s.run_id = a.run_id AND s.name = a.name)"]
    params: list[Any] = []
    for col, value in (("a.run_id", run_id), ("a.workflow", workflow)):
        if value is not None:
            where.append(f"{col} = {mark}")
            params.append(value)
    if after is not None:
        where.append(f"(a.requested_at, a.run_id, a.name) > ({mark}, {mark}, {mark})")
        params.extend(after)
    sql = (
        "SELECT a.workflow, a.name, e.run_id, e.seq, e.type, e.ts, e.step, e.iteration, e.idx, e.attempt, e.data "
        "FROM approvals a JOIN events e ON e.run_id = a.run_id AND e.seq = a.seq WHERE "
        + " AND ".join(where)
        + f" ORDER BY a.requested_at, a.run_id, a.name LIMIT {mark}"
    )
    return sql, [*params, min(limit, MAX_APPROVALS_PAGE)]


def approval_asked(type: str, data: str | None) -> str | None:
    """The signal name of an approval request if an event of ``type`` with ``data`` asks for one
    (a ``step_waiting`` event whose JSON has ``approval`` and a ``signal`` name), else None. The
    SQL stores' triggers apply the same test."""
    if type != "step_waiting" or not data or '"approval"' not in data:
        return None
    try:
        d = json.loads(data)
    except ValueError:
        return None
    if not isinstance(d, dict) or d.get("approval") is None or not isinstance(d.get("signal"), str):
        return None
    return d["signal"]


APPROVAL_SIGNAL = "approval:"
"""The prefix of an approval request's signal: its decision is stored only while it is open."""


def wait_ended(type: str, step: str | None, data: str | None) -> str | None:
    """The signal name whose wait an event ends (a signal wait completed, e.g. timed out), else None."""
    if type != "step_completed" or not step or "/signal:" not in step or not data:
        return None
    try:
        d = json.loads(data)
    except ValueError:
        return None
    return d.get("signal") if isinstance(d, dict) and isinstance(d.get("signal"), str) else None


def pick_fair(
    rows: Sequence[Sequence[Any]],
    *,
    limit: int,
    labels: Sequence[str] | None,
    queue_limits: dict[str, int] | None,
    held: dict[str, dict[Any, int]],
) -> list[str]:
    """Choose up to ``limit`` of the candidate runs ``rows`` — ``(id, queue, tenant, labels,
    priority, workflow)``, oldest first within a priority — in fair order: highest priority, then the
    tenant and the workflow holding the fewest runs (counts in ``held``, updated as runs are taken),
    skipping runs whose labels the claimer lacks and queues at their cap."""
    per_tenant, per_workflow, per_queue = held["tenant"], held["workflow"], held["queue"]
    # Candidates of one (priority, tenant, workflow) are taken oldest first, so only the head of
    # each group competes: a heap of groups, whose keys are refreshed when popped (counts only grow
    # as runs are taken, so a popped group whose key is still current holds the fairest run).
    groups: dict[tuple[Any, ...], collections.deque[tuple[int, Sequence[Any]]]] = {}
    for i, r in enumerate(rows):
        if labels_ok(r[3], labels):
            groups.setdefault((r[4], r[2], r[5]), collections.deque()).append((i, r))

    def key(group: tuple[Any, ...]) -> tuple[Any, ...]:
        priority, tenant, workflow = group
        return (-priority, per_tenant.get(tenant, 0), per_workflow.get(workflow, 0), groups[group][0][0])

    heap = [(key(g), g) for g in groups]
    heapq.heapify(heap)
    ids: list[str] = []
    while heap and len(ids) < limit:
        stored, group = heapq.heappop(heap)
        if (current := key(group)) != stored:
            heapq.heappush(heap, (current, group))
            continue
        _, row = groups[group].popleft()
        if groups[group]:
            heapq.heappush(heap, (key(group), group))
        rid, queue, tenant, _, _, workflow = row
        cap = (queue_limits or {}).get(queue)
        if cap is not None and per_queue.get(queue, 0) >= cap:
            continue
        ids.append(rid)
        per_queue[queue] = per_queue.get(queue, 0) + 1
        per_tenant[tenant] = per_tenant.get(tenant, 0) + 1
        per_workflow[workflow] = per_workflow.get(workflow, 0) + 1
    return ids


def labels_ok(needed: str | None, have: Sequence[str] | None) -> bool:
    """Whether a worker with labels ``have`` (None: any) may run steps that need ``needed``."""
    if not needed or have is None:
        return True
    return set(needed.split(",")) <= set(have)


class Store(ABC):
    """Durable storage of runs and their event logs. Methods are coroutines; instances are reusable
    only between :meth:`open` and :meth:`close`."""

    url: str
    auto_migrate: bool = True
    """Apply pending migrations on :meth:`open` (``podium db upgrade`` turns this off to report them)."""
    in_process: bool = False
    """Whether the data lives in this process only (``memory://``): no other engine can share it,
    so there are no leases to renew nor requests from other processes to watch for."""
    audit_key: str | None = None
    """The audit key file (``Client(audit_key=...)``); None: ``PODIUM_AUDIT_KEY`` or ``~/.podium/audit.key``."""
    drawn_id: str | None = None
    """The id the migration that made this store's key-value table drew (read in that migration's
    transaction, before anything else could change it), when this process ran it: its first open
    skips the look-up of the ids pinned for other stores only for that id (``_identity.bind``)."""
    audit_page_size: int = 5000
    """How many audit entries :meth:`read_audit` fetches at a time."""
    audit_between_pages: Callable[[int], Awaitable[None]] | None = None
    """Awaited by :meth:`read_audit` after each page, with its last seq (tests write between pages)."""

    def start_log(self, owner: str) -> StartLog | None:
        """Where engine ``owner`` writes the run starts it acknowledges before their rows commit
        (``podium/storage/_startlog.py``); None: this store commits every start before it is
        acknowledged (memory, PostgreSQL, SQLite at power-loss-safe durability)."""
        return None

    def start_log_folder(self) -> str | None:
        """The folder of this store's start logs (None: it keeps none)."""
        return None

    @property
    def audit_keys(self) -> AuditKeys:
        """The key that signs this store's audit entries, and its head log (kept outside the store)."""
        made: tuple[str | None, str | None, AuditKeys] | None = self.__dict__.get("_audit_keys")
        if made is None or made[0] != self.audit_key:
            keys = AuditKeys(self.audit_key, in_schema(store_identity(self.url), self.schema), ephemeral=self.in_process)
            if made is not None and not self.in_process:
                keys.store_id, keys.through, keys.held = made[2].store_id, made[2].through, made[2].held  # same store, other key file
            made = self.__dict__["_audit_keys"] = (self.audit_key, self.schema, keys)
        elif made[1] != self.schema:  # read at open (_identity.bind): the keys whoever holds them, named anew
            made[2].rename(in_schema(store_identity(self.url), self.schema))
            made = self.__dict__["_audit_keys"] = (self.audit_key, self.schema, made[2])
        return made[2]

    schema: str | None = None
    """The schema its tables are in (PostgreSQL: read at each open, by :meth:`placement`), part of its
    name where its URL does not imply it (``podium/storage/_names.py``); None: its URL names them."""

    async def placement(self) -> Placement:
        """(the schema its tables are in, the other schemas of its database that may hold a store,
        whether its role owns that schema): no schema where its URL alone names its tables (SQLite, memory)."""
        return Placement(None)

    async def identify(self, *, fresh: bool = False) -> str:
        """Read (or make) this store's id, check it against the one this machine pinned, and bind
        its seals to it (``podium/storage/_identity.py``); ``fresh``: the store was just created.
        A store that is not the one pinned is closed and refused (:class:`StoreError`)."""
        try:
            return await bind(self, fresh=fresh)
        except StoreError:
            await self.close()
            raise

    async def open(self) -> None:
        """Connect and apply pending schema migrations."""

    async def close(self) -> None:
        """Release connections. Safe to call twice."""

    async def schema_version(self) -> int:
        """The schema migration applied last (0 for a store without migrations)."""
        return 0

    async def migrate(self, target: int | None = None) -> list[int]:
        """Apply pending schema migrations up to ``target`` (all by default); returns those applied.
        ``open`` does this too; ``podium db upgrade`` calls it explicitly."""
        return []

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def wait_for_work(self, timeout: float) -> None:
        """Return when new work may be ready (a run submitted, a signal sent, a lease released), or
        after ``timeout`` seconds. Stores that can be told (PostgreSQL's LISTEN/NOTIFY, the memory
        store in-process) return early; the others simply wait, and workers poll."""
        await asyncio.sleep(timeout)

    async def notify_work(self) -> None:
        """Tell waiting workers that work may be ready (see :meth:`wait_for_work`)."""

    #: Whether :meth:`publish` reaches other processes (PostgreSQL) or only this one.
    cross_process_events: bool = False

    async def publish(self, topic: str, payload: str) -> None:
        """Send an application event to every subscriber of this store, in this process and, for
        stores with ``cross_process_events``, in every other process sharing it."""
        for callback in list(getattr(self, "_subscribers", ())):
            callback(topic, payload)

    async def subscribe(self, callback: Callable[[str, str], None]) -> Callable[[], Awaitable[None]]:
        """Call ``callback(topic, payload)`` for every published event. Returns an async unsubscribe."""
        subs: list[Callable[[str, str], None]] = self.__dict__.setdefault("_subscribers", [])
        subs.append(callback)

        async def unsubscribe() -> None:
            if callback in subs:
                subs.remove(callback)

        return unsubscribe

    @abstractmethod
    async def create_run(self, run: RunRecord, events: Sequence[Event] = (), *, audit: AuditEntry | None = None) -> bool:
        """Insert a run and its first events atomically, with ``audit`` (its ``run.start`` or
        ``run.fork`` anchor) appended to this store's audit chain in the same transaction. Returns
        False (and writes nothing, not even ``audit``) when a run with the same id exists: starting
        a run with a fixed id is idempotent."""

    async def create_runs(self, items: Sequence[tuple[RunRecord, Sequence[Event], AuditEntry | None]]) -> list[bool]:
        """:meth:`create_run` for several runs (distinct ids; each with its events and its audit entry
        or None) in one transaction: whether each was created. The entries of the runs created go
        into this store's audit chain one after the other, in that transaction; a run that existed
        writes none. Backends override it so that a group of starts costs one commit."""
        return [await self.create_run(run, events, audit=audit) for run, events, audit in items]

    @abstractmethod
    async def append(
        self, events: Sequence[Event], run_update: dict[str, Any] | None = None, *, audit: AuditEntry | None = None
    ) -> None:
        """Append events (all of one run) and apply ``run_update`` to its row, in one transaction,
        with the audit entry ``audit`` (a run's end anchor) appended to this store's audit chain in
        that same transaction (as :meth:`append_audit` would).

        Raises :class:`LeaseLost` if an event's ``(run_id, seq)`` already exists.
        """

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
        """Write one event with no run update now, without waiting, if this store can (SQLite and
        memory: a lone step's event); False when it must go through :meth:`append_one` instead.
        Raises what :meth:`append_one` would."""
        return False

    def append_rows_at_once(self, rows: Sequence[EventRow]) -> bool:
        """:meth:`append_at_once` of several events of one run, all or none (a loop pass: the
        step's completion and the decision to go round again), each row ``(run_id, seq, type, ts,
        step, iteration, index, attempt, data)``; False when they must go through :meth:`append`."""
        return False

    async def append_one(
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
    ) -> None:
        """Append one event with no run update: the hot path of every step. Same semantics as
        :meth:`append`: written at once if the store can (:meth:`append_at_once`), else appended."""
        if self.append_at_once(run_id, seq, type, ts, step, iteration, index, attempt, data):
            return
        await self.append(
            (Event(run_id=run_id, seq=seq, type=type, ts=ts, step=step, iteration=iteration, index=index, attempt=attempt, data=data),)
        )

    @abstractmethod
    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or None."""

    async def existing_runs(self, run_ids: Sequence[str]) -> set[str]:
        """Which of ``run_ids`` are runs in this store (one query in backends that override it)."""
        return {rid for rid in run_ids if await self.get_run(rid) is not None}

    @abstractmethod
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
        """Runs, newest first (``created_at``, then ``id``, both descending), filtered by workflow
        name, statuses and parent run. ``before`` is a cursor: only runs that come after
        ``(created_at, id)`` in that order (the last run of the previous page)."""

    async def count_runs(self, statuses: Sequence[RunStatus]) -> dict[RunStatus, int]:
        """How many runs have each of ``statuses`` (backends count in SQL rather than list)."""
        return {s: len(await self.list_runs(status=[s], limit=10_000_000)) for s in statuses}

    async def due_timers(self, before: float, *, limit: int = 10_000) -> list[tuple[str, float]]:
        """``(run id, wake_at)`` of the waiting runs whose ``wake_at`` is at or before ``before``,
        earliest first: the timers an engine arms (backends read them from an index)."""
        runs = await self.list_runs(status=[RunStatus.WAITING], limit=10_000_000)
        due = sorted((r.wake_at, r.id) for r in runs if r.wake_at is not None and r.wake_at <= before)
        return [(rid, when) for when, rid in due[:limit]]

    @abstractmethod
    async def load_events(self, run_id: str, *, after: int = 0) -> list[Event]:
        """A run's events with ``seq > after``, in order."""

    @abstractmethod
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
        """Take the lease of up to ``limit`` runs that are ready and that nobody holds.

        Ready: ``pending`` or ``running``, or ``waiting`` with ``wake_at <= due_by`` (default
        ``now``; an engine claims a run shortly before its timer is due). Nobody holds it:
        no owner, an expired lease, or an owner listed in ``steal_from`` (known dead). Restrict to
        ``run_ids`` if given, to ``queues`` if given, and to runs whose ``labels`` are a subset of
        ``labels`` (None: any); never claim those in ``skip`` (run ids), nor runs of the workflow
        versions in ``skip_versions`` (``(workflow, version, workflow_ref or "")``: versions this engine
        could not load, one entry however many runs they have). ``queue_limits`` caps how many runs of a queue may be held at once
        (leases still valid), across all engines. Order: priority (highest first), then tenants with
        the fewest held runs first (fairness), then oldest first. Returns the claimed runs with
        ``owner`` set; a claimed waiting run becomes ``running``."""

    @abstractmethod
    async def renew_leases(
        self, owner: str, run_ids: Sequence[str], *, lease_seconds: float, now: float
    ) -> set[str]:
        """Extend the leases ``owner`` still holds; returns the ids it still owns."""

    @abstractmethod
    async def release_runs(self, owner: str, run_ids: Sequence[str]) -> None:
        """Give up the leases (the runs stay unfinished, for another engine to claim)."""

    @abstractmethod
    async def request_cancel(self, run_id: str) -> None:
        """Flag an unfinished run for cancellation; its owner acts on the flag."""

    @abstractmethod
    async def cancel_requests(self, run_ids: Sequence[str]) -> list[str]:
        """Those of ``run_ids`` that have a pending cancellation request."""

    @abstractmethod
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
        """Deliver signal ``name`` (payload text) to a run. The first signal of a name wins: returns
        False if the run already had one. A decision on an approval request (a name starting with
        :data:`APPROVAL_SIGNAL`) is stored only while the request is open (in the inbox), and with
        ``request`` only if the open one is that request (the ``seq`` of its asking event: not a
        later request of the same name): False otherwise. Not so for a signal ``copied`` from
        another store as it was (``podium db copy``). A waiting run is made ready (``wake_at = now``).
        Raises :class:`NotFound` for an unknown run."""

    async def close_request(self, run_id: str, signal: str) -> bool:
        """Before the engine writes the timeout of a wait for approval ``signal``: close its request
        (out of the inbox) unless its decision is stored already. False: it is, and the waiter takes
        it. True: closed, and a decision sent from now on is refused (:meth:`send_signal`), so a
        decision and a timeout never both count. The SQL stores check and close in one transaction;
        this default suits a store without an inbox of its own."""
        return signal not in await self.get_signals(run_id)

    @abstractmethod
    async def get_signals(self, run_id: str) -> dict[str, str | None]:
        """The signals a run has received, by name."""

    @abstractmethod
    async def open_approvals(
        self,
        *,
        run_id: str | None = None,
        workflow: str | None = None,
        after: tuple[float, str, str] | None = None,
        limit: int = 100,
    ) -> list[OpenApproval]:
        """The approval requests of unfinished runs that no signal has answered and that have not
        timed out, oldest first (by request time, run id, name), at most ``limit``
        (:data:`MAX_APPROVALS_PAGE`), filtered by run and workflow. ``after`` is a cursor: only
        requests after ``(requested_at, run_id, name)`` in that order. One request per run and name
        (a signal answers every wait of its name). Backends keep an index of the open requests,
        updated in the transaction that writes the request's ``step_waiting`` event, its signal,
        the wait's end or the run's end, so a page costs the same with any number of parked runs."""

    # -- governance: the audit log and small settings -----------------------------------------------

    @abstractmethod
    async def append_audit(self, entry: AuditEntry) -> AuditEntry:
        """Append ``entry`` to this store's own audit chain (no lock shared with other writers):
        assign the next ``seq`` of the whole log and the next place in the chain, chain it to the
        chain's last entry signed with :attr:`audit_keys`, and return it; the chain's head is
        anchored in the shared anchor chain now and then (:class:`podium.storage._audit.ChainedAudit`,
        which the built-in stores mix in). Once committed, the entry's (seq, hash) is added to the
        head log (``audit_keys.note_head``)."""

    async def anchor_audit(self) -> None:
        """Record this store's audit chain head in the shared anchor chain now (stores that chain
        their audit log do it now and then by themselves, and when they close)."""

    @abstractmethod
    async def list_audit(self, *, after: int = 0, limit: int = 1000) -> list[AuditEntry]:
        """Audit entries with ``seq > after``, oldest first."""

    async def read_audit(self) -> list[AuditEntry]:
        """The whole audit log, oldest first, in pages of :attr:`audit_page_size`. A backend whose
        writers can commit out of seq order reads every page in one snapshot (PostgreSQL): an entry
        that commits between two pages with a seq below the last one read would look deleted."""
        out: list[AuditEntry] = []
        while page := await self.list_audit(after=out[-1].seq if out else 0, limit=self.audit_page_size):
            out.extend(page)
            if self.audit_between_pages is not None:
                await self.audit_between_pages(page[-1].seq)
        return out

    async def governing_heads(self) -> dict[str, str]:
        """Per target of an entry of :data:`~podium.records.GOVERNING_ACTIONS` (a kill switch's key,
        ``workflow:NAME`` of a policy), a stamp of its such entries, signed or not, that changes
        whenever one is added, removed or renumbered (:func:`~podium.records.governing_stamps`).
        Backends with an index of those entries override this scan."""
        return governing_stamps((e.target, e.seq) for e in await self.governing_entries())

    async def governing_entries(self) -> list[AuditEntry]:
        """Every entry of :data:`~podium.records.GOVERNING_ACTIONS`, signed or not, oldest first:
        what an engine reads once when it has many names to look up. Backends with an index of
        those entries override this scan."""
        out: list[AuditEntry] = []
        after = 0
        while page := await self.list_audit(after=after, limit=5000):
            out += [e for e in page if e.action in GOVERNING_ACTIONS]
            after = page[-1].seq
        return out

    async def audit_user_put(self) -> bool:
        """Whether the audit log holds a ``user.put`` entry (signed or not): the store has had users,
        and users are disabled, never deleted (``podium serve`` asks at its start when it finds no
        user rows). Backends with an index of those entries override this scan."""
        after = 0
        while page := await self.list_audit(after=after, limit=5000):
            if any(e.action == "user.put" for e in page):
                return True
            after = page[-1].seq
        return False

    async def audit_for(self, target: str) -> list[AuditEntry]:
        """The audit entries about ``target`` (a run id...), oldest first. Backends with an index
        on the target override this scan."""
        out: list[AuditEntry] = []
        after = 0
        while page := await self.list_audit(after=after, limit=5000):
            out.extend(e for e in page if e.target == target)
            after = page[-1].seq
        return out

    @abstractmethod
    async def kv_put(self, namespace: str, key: str, value: str | None) -> None:
        """Set (or, with None, delete) a setting: users, tokens, kill switches, policies..."""

    @abstractmethod
    async def kv_get(self, namespace: str, key: str) -> str | None:
        """One setting, or None."""

    @abstractmethod
    async def kv_list(self, namespace: str) -> dict[str, str]:
        """Every setting of a namespace."""

    async def kv_count(self, namespace: str) -> int:
        """How many settings a namespace holds (a gauge reads it at every scrape: stores count them
        without reading their values)."""
        return len(await self.kv_list(namespace))

    @abstractmethod
    async def kv_incr(self, namespace: str, key: str, amount: float) -> float:
        """Add ``amount`` to a numeric setting (missing: 0) atomically across processes; return the
        new total. Budgets (tokens and cost per day, per entity) are counted with it."""

    @abstractmethod
    async def kv_swap(self, namespace: str, key: str, expected: str | None, value: str | None) -> bool:
        """Set ``key`` to ``value`` (None: delete it) only if it holds ``expected`` now (None: it is
        absent), atomically across processes; whether it did. Of two writers that read the same
        value, one wins and the other reads again (a model's owners: ``podium/ml/_owners.py``)."""

    @abstractmethod
    async def unfinished_owners(self) -> list[str]:
        """Distinct owners of unfinished runs (to look for dead ones on this host)."""

    # -- retention and erasure (``podium memory prune``, ``podium memory forget``) ----------------------------

    @abstractmethod
    async def finished_run_ids(self, *, before: float) -> list[str]:
        """Ids of the finished runs (completed, failed, cancelled) whose ``finished_at`` is earlier
        than ``before``, oldest first."""

    @abstractmethod
    async def delete_runs(self, run_ids: Sequence[str], *, record: PruneRecord | None = None) -> list[str]:
        """Delete these runs with their events and signals, atomically; returns the ids deleted.
        Unfinished and unknown runs are left alone (an engine may hold them). With ``record``,
        each deleted run's audit entry (``record(run_id)``) is written in the same transaction, in
        this store's chain: the deletion and its record land together or not at all (a deletion
        without its record would read as tampering to ``podium audit verify``, for good)."""

    @abstractmethod
    async def redact_payloads(
        self, texts: Sequence[str], replacement: str, *, record: RedactRecord | None = None
    ) -> Redaction:
        """Replace each of ``texts``, in order, with ``replacement`` in every run's stored payloads:
        the run's ``input``, ``output`` and ``error``, its events' ``data`` and its signals'
        ``payload``, atomically. In JSON the texts are replaced inside strings (values and keys,
        however the string was escaped), and a number whose whole text is one of them becomes the
        replacement string; other numbers, literals, structure and Podium's type tags are left, so
        every payload still reads (:func:`podium._redact.redact_stored`). A payload that is not
        JSON is replaced as plain text. Empty texts are ignored. Only payloads that change are
        written, in the encoding they had; nothing else changes (sequence numbers, statuses,
        times). With ``record``, each changed run's audit entry (``record(run_id, run, events)``,
        from its record and events as changed) is written in the same transaction, in this store's chain."""


#: Payload columns rewritten by the SQL stores' :meth:`Store.redact_payloads`: table, column, the
#: columns of a row's key (the run id first).
PAYLOADS = (
    ("runs", "input", ("id",)),
    ("runs", "output", ("id",)),
    ("runs", "error", ("id",)),
    ("events", "data", ("run_id", "seq")),
    ("signals", "payload", ("run_id", "name")),
)


def redaction_sql(table: str, column: str, key: Sequence[str], forms: int, find: str, mark: str) -> tuple[str, str]:
    """One payload column's statements: the SELECT of each row's key and text where ``find``
    (``instr``, ``strpos``) sees any of ``forms`` parameters, and the UPDATE of one row's text by
    key (the text first). ``mark`` is the dialect's placeholder."""
    where = " OR ".join([f"{find}({column}, {mark}) > 0"] * forms)
    by_key = " AND ".join(f"{k} = {mark}" for k in key)
    return (
        f"SELECT {', '.join(key)}, {column} FROM {table} WHERE {where}",
        f"UPDATE {table} SET {column} = {mark} WHERE {by_key}",
    )


def redacted_rows(
    rows: Iterable[Sequence[Any]], texts: Sequence[str], replacement: str
) -> list[tuple[str, Sequence[Any], int]]:
    """Of rows ``(key..., text)`` read by :func:`redaction_sql`'s SELECT, those that change: their
    new text, key, and how many of ``texts`` they held."""
    out: list[tuple[str, Sequence[Any], int]] = []
    for *key, text in rows:
        new, hits = redact_stored(text, texts, replacement)
        if hits:
            out.append((new, key, hits))
    return out


def run_from_row(row: Sequence[Any]) -> RunRecord:
    """A run from a ``runs`` row in the column order every SQL store uses (SQLite, PostgreSQL)."""
    return RunRecord(
        id=row[0],
        workflow=row[1],
        version=row[2],
        status=RunStatus(row[3]),
        input=row[4],
        output=row[5],
        error=row[6],
        created_at=row[7],
        started_at=row[8],
        finished_at=row[9],
        parent_run_id=row[10],
        parent_step=row[11],
        forked_from=row[12],
        fork_step=row[13],
        workflow_ref=row[14],
        owner=row[15],
        lease_expires_at=row[16],
        cancel_requested=bool(row[17]),
        wake_at=row[18],
        queue=row[19],
        priority=row[20],
        tenant=row[21],
        labels=row[22],
    )
