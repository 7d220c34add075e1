"""SQLite store: the embedded default. One file, WAL journal, ``synchronous=NORMAL``: a commit
survives a crash of the process (the default, ``durability="crash"``), not a power loss. With
``durability="power"`` (the ``durability`` setting, ``PODIUM_DURABILITY=power``, or
``SQLiteStore(url, durability="power")``) every commit is fsynced before it returns
(``synchronous=FULL``).

Statements run on the event loop's thread: a WAL commit without fsync takes about as long as a
thread hop would, so handing it to a thread pool would only add latency. The busy timeout lets
several processes (``podium run`` beside ``podium runs``) share the file.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from .._sqldb import StoreConnection, durability_of
from ..errors import ConfigError, LeaseLost, NotFound, StoreError
from ..records import ANCHOR_CHAIN, GENESIS, AuditEntry, Event, RunRecord, RunStatus, governing_stamps
from ._audit import AUDIT_COLUMNS, GOVERNING, USER_PUT, Sign, entry_from_row
from ._base import (
    APPROVAL_SIGNAL,
    UPDATABLE,
    EventRow,
    OpenApproval,
    Store,
    approval_asked,
    approvals_query,
    pick_fair,
    run_from_row,
    wait_ended,
)
from ._group import GroupWrite, NewRun
from ._identity import ID_MIGRATION, ID_ROW, drawn
from ._sqlite_erase import SQLiteErasure
from ._sqlite_runs import SQLiteKV, cancel_requests
from ._sqlite_schema import GOVERNING_OR, MIGRATIONS, SKIPPED_VERSION, UNHELD
from ._sqlite_wal import WalWatch
from ._startlog import StartLogs

_execute = sqlite3.Connection.execute  # without StoreConnection's Python frame (append_at_once)

_RUN_COLS = (
    "id, workflow, version, status, input, output, error, created_at, started_at, finished_at, "
    "parent_run_id, parent_step, forked_from, fork_step, workflow_ref, owner, lease_expires_at, cancel_requested, "
    "wake_at, queue, priority, tenant, labels"
)
_RUN_INSERT = f"INSERT OR IGNORE INTO runs ({_RUN_COLS}) VALUES ({','.join('?' * 23)})"
_AUDIT_INSERT = f"INSERT INTO audit ({AUDIT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)"
_EVENT_INSERT = "INSERT INTO events (run_id, seq, type, ts, step, iteration, idx, attempt, data) VALUES (?,?,?,?,?,?,?,?,?)"
_EVENT_INSERTS = {n: _EVENT_INSERT + ",(?,?,?,?,?,?,?,?,?)" * (n - 1) for n in (2, 3, 4)}  # several events at once
#: The UPDATE statement of each shape of run update (its fields, and whether the run stays held).
_UPDATES: dict[tuple[tuple[str, ...], bool], str] = {}
_UNFINISHED = (RunStatus.PENDING.value, RunStatus.RUNNING.value, RunStatus.WAITING.value)
_HELD = (RunStatus.PENDING.value, RunStatus.RUNNING.value)  # the statuses of a run an engine holds

log = logging.getLogger("podium.storage")

_run = run_from_row


def _statements(script: str) -> list[str]:
    """The statements of a migration script, each whole (a trigger's body holds semicolons)."""
    out, buf = [], ""
    for part in script.split(";"):
        buf += part + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n;"):
                out.append(buf)
            buf = ""
    return out


#: The schema version that has the approvals inbox (its triggers, dropped in version 9, kept it
#: too: the store's statements and the triggers do the same idempotent writes).
_INBOX = 7
#: The schema version from which every index named by INDEXED BY exists (runs_owned, runs_cancel).
_HINTED = 5
_GOVERNING_OR = 14  # audit_governing's condition written with OR (_sqlite_schema.GOVERNING_OR)
_APPROVAL_OPEN = (
    "INSERT OR IGNORE INTO approvals (run_id, name, seq, workflow, requested_at) "
    "SELECT r.id, ?, ?, r.workflow, ? FROM runs r WHERE r.id = ? AND r.status IN ('pending', 'running', 'waiting') "
    "AND NOT EXISTS (SELECT 1 FROM signals s WHERE s.run_id = r.id AND s.name = ?)"
)


def _event(r: Sequence[Any]) -> Event:
    return Event(run_id=r[0], seq=r[1], type=r[2], ts=r[3], step=r[4], iteration=r[5], index=r[6], attempt=r[7], data=r[8])


def _asks_or_answers(type: str, step: str | None) -> bool:
    """Whether an event may open or close an approval request (a step's wait, the end of a wait):
    written with the inbox's rows, in a transaction, never at once."""
    return type == "step_waiting" or (type == "step_completed" and step is not None and "/signal:" in step)


def _event_row(e: Event) -> tuple[Any, ...]:
    t: str = e.type  # an EventType is a str subclass: sqlite3 binds it through its adapter lookup (~0.6 µs)
    if t.__class__ is not str:
        t = str.__str__(t)
    return (e.run_id, e.seq, t, e.ts, e.step, e.iteration, e.index, e.attempt, e.data)


_Write = tuple[Any, Any, "AuditEntry | None"]
"""One write of a group: a run to create (:data:`NewRun`) or an append (events, run update, audit entry)."""


class SQLiteStore(SQLiteErasure, SQLiteKV, StartLogs, Store):
    """Store in a SQLite file: ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``."""

    def __init__(self, url: str, *, durability: str | None = None) -> None:
        self.durability = durability_of(durability)
        """``crash``: safe against a crash of the process; ``power``: also against a power loss."""
        self.url = url
        path = url.removeprefix("sqlite://")
        if path.startswith("/"):  # sqlite:///rel.db -> rel.db; sqlite:////abs.db -> /abs.db
            path = path[1:]
        if not path:
            raise ConfigError(f"store URL {url!r} names no file; use sqlite:///podium.db")
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._wal = WalWatch(path)
        self._keeps_inbox = True
        self._hints = True
        """Whether the schema has every index the queries name with INDEXED BY (else they go without)."""
        self._governing = GOVERNING_OR
        """The condition of the partial index audit_governing as this store's schema writes it."""
        self.writes: GroupWrite[_Write, bool] = GroupWrite(self._write_many, eager=True)
        """Writes made at the same moment share one transaction (see ``_group.py``): the first write
        of a turn of the event loop is made at once, the run starts and ends that follow it in the
        same turn are gathered into one, and a step's event joins a transaction being gathered (many
        runs at once) or is written on its own (one run: no wait)."""

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"store {self.url} is not open; use 'async with' or await store.open()")
        return self._db

    async def open(self) -> None:
        if self._db is not None:
            return
        self._db = self._connect()
        fresh = self.auto_migrate and 1 in self._migrate()
        self._note_schema()
        self._wal.note()
        if self.auto_migrate or self._schema_version() >= 3:  # its id is in the kv table (podium db upgrade too)
            await self.identify(fresh=fresh)

    def _connect(self) -> sqlite3.Connection:
        folder = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(folder, exist_ok=True)
            db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10.0, factory=StoreConnection
            )
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open SQLite store {self.path!r}: {exc}") from exc
        try:
            db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:  # a database that cannot be used now (an I/O error, a lock)
            db.close()
            raise ConfigError(f"cannot open {exc}") from exc
        except sqlite3.DatabaseError as exc:  # a file that is not a database (or not one SQLite can read)
            db.close()
            raise ConfigError(
                f"{self.path!r} is not a SQLite database ({exc}); point --db / PODIUM_DB at a Podium store, "
                "or at a path where none exists yet to create one"
            ) from exc
        db.execute("PRAGMA synchronous=FULL" if self.durability == "power" else "PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=10000")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def _watch_wal(self) -> None:
        """Open the store again if its -wal file was deleted under this process (``_sqlite_wal.py``)."""
        if self._db is None or not self._wal.replaced():
            return
        log.error(
            "SQLite store %r: its -wal file was deleted or replaced while this process had the store open; "
            "writing what this process wrote back into the database file and opening the store again. Never "
            "delete a store's -wal or -shm file while a process uses it: another process may have seen an "
            "older state meanwhile", self.path,
        )
        db, self._db = self._db, None
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            log.error("SQLite store %r: writing the deleted -wal file back failed: %s", self.path, exc)
        db.close()
        self._db = self._connect()
        self._wal.note()

    async def schema_version(self) -> int:
        return self._schema_version()

    async def migrate(self, target: int | None = None) -> list[int]:
        applied = self._migrate(target)
        if target is None:  # the store's id is kept in its key-value table (schema 3)
            await self.identify(fresh=1 in applied)
        return applied

    def _schema_version(self) -> int:
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL)"
        )
        row = self.db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return row[0] or 0

    def _migrate(self, target: int | None = None) -> list[int]:
        applied = []
        current = self._schema_version()
        for version, sql in MIGRATIONS:
            if version <= current or (target is not None and version > target):
                continue
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                if self._schema_version() >= version:  # another process got there first
                    db.execute("ROLLBACK")
                    continue
                for stmt in _statements(sql):
                    db.execute(stmt)
                if version == ID_MIGRATION:  # the id it drew, before anything else can change it
                    self.drawn_id = drawn(db.execute(ID_ROW).fetchone())
                db.execute("INSERT INTO schema_migrations VALUES (?, strftime('%s','now'))", (version,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            applied.append(version)
        self._note_schema()
        return applied

    async def close(self) -> None:
        if self._db is not None:
            await self._close_audit()
        db, self._db = self._db, None
        if db is not None:
            db.close()

    async def create_run(self, run: RunRecord, events: Sequence[Event] = (), *, audit: AuditEntry | None = None) -> bool:
        return await self.writes.submit((run, events, audit), key=run.id)

    async def create_runs(self, items: Sequence[NewRun]) -> list[bool]:
        return await self._write_many(items)

    async def append(
        self, events: Sequence[Event], run_update: dict[str, Any] | None = None, *, audit: AuditEntry | None = None
    ) -> None:
        if len(events) == 1 and not run_update and audit is None:
            e = events[0]
            if self.append_at_once(e.run_id, e.seq, e.type, e.ts, e.step, e.iteration, e.index, e.attempt, e.data):
                return
        if not events:
            raise ValueError("append needs at least one event")
        if audit is None and self.writes.at_once(events[0].run_id):  # else it rides in this turn's group
            self._write_tx([(events, run_update, None)], None)
            return
        # Runs ending together: one commit. A step's event (no audit entry) joining a group lands
        # even if its caller is cancelled meanwhile, as when it is written at once: the executor has
        # counted its seq, and the run's next events (its end) would follow a hole.
        await self.writes.submit((events, run_update, audit), lands=audit is None, key=events[0].run_id)

    async def _write_many(self, items: Sequence[_Write]) -> list[bool]:
        if all(item[2] is None for item in items):
            return self._write_tx(items, None)
        async with self._chained_many() as place:  # taken before the transaction: no await inside it
            return self._write_tx(items, place)
        return []  # not reached (for type checkers: the context manager could swallow)

    def _write_tx(self, items: Sequence[_Write], place: Callable[[AuditEntry], AuditEntry] | None) -> list[bool]:
        """Runs to create (whether each was new) and appends (each with its run update), each with
        its audit entry (placed in the chain by ``place``, then numbered and signed before the next
        is placed), in one transaction. The events of every item go in one statement, after the
        runs are created and before any run is updated (a run parking lists its requests from its
        events: the trigger approvals_kept); updates and the inbox's statements keep the items'
        order; the audit entries go in one statement last."""
        db = self.db
        out: list[bool] = []
        first: Event | None = None
        seq = 0  # the last audit number given in this transaction (0: none yet; the lock is held)
        rows: list[tuple[Any, ...]] = []
        kept: list[_Write] = []  # the items written (a run that existed: nothing of it)
        db.execute("BEGIN IMMEDIATE")
        try:
            for item in items:
                if isinstance(item[0], RunRecord):
                    run, events = item[0], item[1]
                    cur = db.execute(
                        _RUN_INSERT,
                        (
                            run.id, run.workflow, run.version, run.status.value, run.input, run.output, run.error,
                            run.created_at, run.started_at, run.finished_at, run.parent_run_id, run.parent_step,
                            run.forked_from, run.fork_step, run.workflow_ref, run.owner, run.lease_expires_at,
                            int(run.cancel_requested), run.wake_at, run.queue, run.priority, run.tenant, run.labels,
                        ),
                    )  # fmt: skip
                    out.append(cur.rowcount == 1)
                    if not out[-1]:  # it existed: nothing of it is written, not even its audit entry
                        continue
                else:
                    events = item[0]
                    first = events[0]
                    out.append(True)
                rows += [_event_row(e) for e in events]
                kept.append(item)
            if rows:
                db.executemany(_EVENT_INSERT, rows)
            entries: list[tuple[Any, ...]] = []
            for item in kept:
                if isinstance(item[0], RunRecord):
                    if item[1]:
                        self._keep_inbox(item[1])
                else:
                    events, run_update = item[0], item[1]
                    if run_update:
                        self._update_run(events[0].run_id, run_update)
                    self._keep_inbox(events)
                audit = item[2]
                if audit is not None and place is not None:  # the next place in the chain, numbered and signed
                    e = place(audit)
                    seq = e.seq = (seq or db.execute("SELECT MAX(seq) FROM audit").fetchone()[0] or 0) + 1
                    self._sign(e)
                    entries.append((e.seq, e.ts, e.actor, e.action, e.target, e.data, e.prev_hash, e.hash, e.chain, e.cseq))
            if entries:
                db.executemany(_AUDIT_INSERT, entries)
            db.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            db.execute("ROLLBACK")
            if first is not None and len(items) == 1:  # an event already written: who owns the run
                raise self._conflict(first) from exc
            raise
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return out

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
        # A step of a lone run: one statement, its own transaction. Not when a group is gathering
        # or another run wrote at once in this turn of the loop (many runs at once: the event
        # rides in the group), nor for an event that may open or close an approval request
        # (written with the inbox's row, in one transaction).
        db = self._db  # _asks_or_answers(), inline: the hot path of every step
        if db is None or type == "step_waiting" or (type == "step_completed" and step is not None and "/signal:" in step):
            return False
        if not self.writes.at_once(run_id):
            return False
        try:  # the connection's own execute (a durable step's one statement: no Python frame around it)
            _execute(db, _EVENT_INSERT, (run_id, seq, type, ts, step, iteration, index, attempt, data))
        except sqlite3.IntegrityError as exc:
            raise self._conflict(Event(run_id=run_id, seq=seq, type=type, ts=ts)) from exc
        except sqlite3.OperationalError as exc:  # named as StoreConnection.execute names it
            if isinstance(db, StoreConnection):
                raise db.failed(exc) from exc
            raise
        return True

    def append_rows_at_once(self, rows: Sequence[EventRow]) -> bool:
        # One multi-row INSERT: atomic as one statement, no BEGIN and COMMIT around it.
        db = self._db
        if db is None or [r for r in rows if _asks_or_answers(r[2], r[4])] or not self.writes.at_once(rows[0][0]):
            return False
        try:  # its statement made once (a loop pass: 2 rows)
            db.execute(_EVENT_INSERTS.get(len(rows)) or _EVENT_INSERT + ",(?,?,?,?,?,?,?,?,?)" * (len(rows) - 1), sum(rows, ()))
        except sqlite3.IntegrityError as exc:
            raise self._conflict(Event(run_id=rows[0][0], seq=rows[0][1], type=rows[0][2], ts=rows[0][3])) from exc
        return True

    def _keep_inbox(self, events: Sequence[Event]) -> None:
        """Open or close the approval requests these events make (in the caller's transaction, after them)."""
        for e in events:
            if not _asks_or_answers(e.type, e.step):  # most events: no request opened or closed
                continue
            if not self._has_inbox():
                return
            if (name := approval_asked(e.type, e.data)) is not None:
                self.db.execute(_APPROVAL_OPEN, (name, e.seq, e.ts, e.run_id, name))
            elif (name := wait_ended(e.type, e.step, e.data)) is not None:
                self.db.execute("DELETE FROM approvals WHERE run_id = ? AND name = ?", (e.run_id, name))

    def _note_schema(self) -> None:
        """What the schema it is at lets this store use (after opening or migrating)."""
        version = self._schema_version()
        self._keeps_inbox = version >= _INBOX
        self._hints = version >= _HINTED
        self._governing = GOVERNING_OR if version >= _GOVERNING_OR else GOVERNING  # as its index is written

    def _by(self, index: str) -> str:
        """``INDEXED BY index`` if the schema has the hinted indexes (see :attr:`_hints`)."""
        return f" INDEXED BY {index}" if self._hints else ""

    def _conflict(self, event: Event) -> Exception:
        if self.db.execute("SELECT 1 FROM runs WHERE id=?", (event.run_id,)).fetchone() is None:
            return NotFound(f"run {event.run_id} does not exist")
        return LeaseLost(f"event {event.seq} of run {event.run_id} already written: another engine owns it")

    def _update_run(self, run_id: str, update: dict[str, Any]) -> None:
        params = [v.value if isinstance(v, RunStatus) else v for v in update.values()]
        status = update.get("status")
        held = status is None or status in (RunStatus.PENDING, RunStatus.RUNNING)
        key = (tuple(update), held)
        sql = _UPDATES.get(key)
        if sql is None:
            bad = set(update) - UPDATABLE
            if bad:
                raise ValueError(f"cannot update run fields {sorted(bad)}")
            sets = ", ".join(f"{k}=?" for k in update)
            if not held:
                sets += ", owner=NULL, lease_expires_at=NULL"  # finished or waiting: nobody holds it
            sql = _UPDATES[key] = f"UPDATE runs SET {sets} WHERE id=?"
        self.db.execute(sql, [*params, run_id])

    async def get_run(self, run_id: str) -> RunRecord | None:
        return self._run_now(run_id)

    def _run_now(self, run_id: str) -> RunRecord | None:
        row = self.db.execute(f"SELECT {_RUN_COLS} FROM runs WHERE id=?", (run_id,)).fetchone()
        return _run(row) if row else None

    async def existing_runs(self, run_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        ids = list(dict.fromkeys(run_ids))
        for i in range(0, len(ids), 500):  # under SQLite's limit of bound parameters
            part = ids[i : i + 500]
            found.update(r[0] for r in self.db.execute(f"SELECT id FROM runs WHERE id IN ({','.join('?' * len(part))})", part))
        return found

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
        where: list[str] = []
        params: list[Any] = []
        if workflow is not None:
            where.append("workflow=?")
            params.append(workflow)
        if parent_run_id is not None:
            where.append("parent_run_id=?")
            params.append(parent_run_id)
        if before is not None:
            where.append("(created_at, id) < (?, ?)")
            params.extend(before)
        order = " ORDER BY created_at DESC, id DESC LIMIT ?"
        statuses = list(dict.fromkeys(RunStatus(s).value for s in status)) if status is not None else None
        if statuses == []:
            return []  # no status asked for: no run matches
        if parent_run_id is not None:  # one range of the partial runs_parent index (INDEXED BY: the planner
            # would take workflow and status from runs_workflow_status, every parked run of the workflow)
            if statuses:
                where.append(f"status IN ({','.join('?' * len(statuses))})")
                params.extend(statuses)
            sql = f"SELECT {_RUN_COLS} FROM runs{self._by('runs_parent')} WHERE " + " AND ".join(where)
            rows = self.db.execute(sql + order + " OFFSET ?", [*params, limit, offset])
            return [_run(r) for r in rows]
        # The newest of each status among the runs no engine holds (one range per status of runs_status,
        # or runs_workflow_status), and the newest held pending or running runs (runs_owned, in
        # creation order: schema 13), merged in one statement (one snapshot).
        statuses = statuses if statuses is not None else [s.value for s in RunStatus]
        free = f"SELECT * FROM (SELECT {_RUN_COLS} FROM runs WHERE " + " AND ".join([UNHELD, "status=?", *where]) + order + ")"
        arms, args = [free] * len(statuses), [a for value in statuses for a in (value, *params, limit + offset)]
        if held := [value for value in statuses if value in _HELD]:
            arms.append(f"SELECT * FROM (SELECT {_RUN_COLS} FROM runs{self._by('runs_owned')} WHERE " + " AND ".join(
                ["owner IS NOT NULL", f"status IN ({','.join('?' * len(held))})", *where]) + order + ")")  # fmt: skip
            args += [*held, *params, limit + offset]
        return [_run(r) for r in self.db.execute(" UNION ALL ".join(arms) + order + " OFFSET ?", [*args, limit, offset])]

    async def count_runs(self, statuses: Sequence[RunStatus]) -> dict[RunStatus, int]:
        # One statement (one snapshot): a run claimed or handed back between two reads was counted twice or not at all
        values, marks = [RunStatus(s).value for s in statuses], ",".join("?" * len(statuses))
        sql = (
            f"SELECT status, SUM(n) FROM (SELECT status, COUNT(*) AS n FROM runs WHERE {UNHELD} AND status IN ({marks}) "
            f"GROUP BY status UNION ALL SELECT status, COUNT(*) FROM runs{self._by('runs_owned')} WHERE owner IS NOT NULL "
            f"AND status IN ('pending', 'running') AND status IN ({marks}) GROUP BY status) GROUP BY status"
        )  # fmt: skip
        found = dict(self.db.execute(sql, [*values, *values]).fetchall())
        return {RunStatus(s): found.get(RunStatus(s).value, 0) for s in statuses}

    async def due_timers(self, before: float, *, limit: int = 10_000) -> list[tuple[str, float]]:
        rows = self.db.execute(
            # INDEXED BY: without statistics the planner prefers status=? in runs_status, every parked run
            f"SELECT id, wake_at FROM runs{self._by('runs_wake')} WHERE status='waiting' AND wake_at <= ? "
            "ORDER BY wake_at LIMIT ?",
            (before, limit),
        )
        return [(r[0], r[1]) for r in rows]

    async def load_events(self, run_id: str, *, after: int = 0) -> list[Event]:
        return self._events_now(run_id, after)

    def _events_now(self, run_id: str, after: int = 0) -> list[Event]:
        rows = self.db.execute(
            "SELECT run_id, seq, type, ts, step, iteration, idx, attempt, data FROM events "
            "WHERE run_id=? AND seq>? ORDER BY seq",
            (run_id, after),
        )
        return [_event(r) for r in rows]

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
        if run_ids is not None and not run_ids:
            return []
        self._watch_wal()
        db = self.db
        lapsed = "lease_expires_at < ?" + (f" OR owner IN ({','.join('?' * len(steal_from))})" if steal_from else "")
        rest, picked = "", list[Any]()  # the caller's own filters, on every branch
        if run_ids is not None:
            rest += f" AND id IN ({','.join('?' * len(run_ids))})"
            picked.extend(run_ids)
        if queues is not None:
            rest += f" AND queue IN ({','.join('?' * len(queues))})"
            picked.extend(queues)
        if skip or skip_versions:  # one parameter each however many (SQLite caps the number of parameters)
            rest += f" AND id NOT IN (SELECT value FROM json_each(?)) AND {SKIPPED_VERSION}"
            picked += [json.dumps(list(skip)), json.dumps([list(v) for v in skip_versions])]
        free = f"(owner IS NULL OR {lapsed}){rest}"
        common: list[Any] = [now, *steal_from, *picked]
        # Ready runs: four index searches (runs_status: pending or handed back, nobody holds them;
        # runs_owned: held, lease run out or engine stolen from; runs_wake, runs_cancel), not a read of
        # every parked run (INDEXED BY: with no statistics the planner would take status='waiting' from
        # runs_status, every parked run; tests/test_sqlite_plans.py). Runs by id: by their key.
        cols = "SELECT id, queue, tenant, labels, priority, workflow, created_at FROM runs"
        by = ("", "", "", "") if run_ids is not None else ("runs_status", "runs_owned", "runs_wake", "runs_cancel")
        on = [self._by(index) if index else "" for index in by]
        sql = (
            f"{cols}{on[0]} WHERE owner IS NULL AND status IN ('pending','running'){rest} "
            f"UNION {cols}{on[1]} WHERE owner IS NOT NULL AND status IN ('pending','running') AND ({lapsed}){rest} "
            f"UNION {cols}{on[2]} WHERE status='waiting' AND wake_at <= ? AND {free} "
            f"UNION {cols}{on[3]} WHERE status='waiting' AND cancel_requested=1 AND {free}"
        )
        params = [*picked, now, *steal_from, *picked, now if due_by is None else due_by, *common, *common]
        db.execute("BEGIN IMMEDIATE")
        try:
            held: dict[str, dict[Any, int]] = {"tenant": {}, "workflow": {}, "queue": {}}
            for tenant, workflow, queue, n in db.execute(
                f"SELECT tenant, workflow, queue, COUNT(*) FROM runs{self._by('runs_owned')} "
                "WHERE owner IS NOT NULL AND "
                "lease_expires_at >= ? AND status IN ('pending','running','waiting') GROUP BY tenant, workflow, queue",
                (now,),
            ):
                for col, value in (("tenant", tenant), ("workflow", workflow), ("queue", queue)):
                    held[col][value] = held[col].get(value, 0) + n
            # Fairness depends on held counts that change as we claim, so the final order is made here.
            window = max(limit * 20, 200)
            rows = [
                r[:6] for r in db.execute(sql + " ORDER BY priority DESC, created_at, id LIMIT ?", [*params, window])
            ]
            ids = pick_fair(rows, limit=limit, labels=labels, queue_limits=queue_limits, held=held)
            for rid in ids:
                db.execute(
                    "UPDATE runs SET owner=?, lease_expires_at=?, "
                    "status=CASE status WHEN 'waiting' THEN 'running' ELSE status END, "
                    "wake_at=CASE status WHEN 'waiting' THEN NULL ELSE wake_at END WHERE id=?",
                    (owner, now + lease_seconds, rid),
                )
            out = [db.execute(f"SELECT {_RUN_COLS} FROM runs WHERE id=?", (rid,)).fetchone() for rid in ids]
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return [_run(r) for r in out]

    async def renew_leases(
        self, owner: str, run_ids: Sequence[str], *, lease_seconds: float, now: float
    ) -> set[str]:
        if not run_ids:
            return set()
        self._watch_wal()
        marks = ",".join("?" * len(run_ids))
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                f"UPDATE runs SET lease_expires_at=? WHERE owner=? AND id IN ({marks})",
                (now + lease_seconds, owner, *run_ids),
            )
            kept = {
                r[0]
                for r in db.execute(
                    f"SELECT id FROM runs WHERE owner=? AND id IN ({marks})", (owner, *run_ids)
                )
            }
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return kept

    async def release_runs(self, owner: str, run_ids: Sequence[str]) -> None:
        if run_ids:
            self.db.execute(
                f"UPDATE runs SET owner=NULL, lease_expires_at=NULL WHERE owner=? AND id IN ({','.join('?' * len(run_ids))})",
                (owner, *run_ids),
            )

    async def request_cancel(self, run_id: str) -> None:
        cur = self.db.execute(
            "UPDATE runs SET cancel_requested=1 WHERE id=? AND status IN (?,?,?)", (run_id, *_UNFINISHED)
        )
        if cur.rowcount == 0 and await self.get_run(run_id) is None:
            raise NotFound(f"run {run_id} does not exist")

    async def cancel_requests(self, run_ids: Sequence[str]) -> list[str]:
        return cancel_requests(self.db, run_ids, _UNFINISHED)

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
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone() is None:
                raise NotFound(f"run {run_id} does not exist")
            if not copied and name.startswith(APPROVAL_SIGNAL) and self._has_inbox():
                asked = db.execute("SELECT seq FROM approvals WHERE run_id=? AND name=?", (run_id, name)).fetchone()
                if asked is None or (request is not None and asked[0] != request):
                    db.execute("ROLLBACK")
                    return False  # no longer open (timed out, decided), or a later request of the same name
            cur = db.execute(
                "INSERT OR IGNORE INTO signals (run_id, name, payload, created_at) VALUES (?,?,?,?)",
                (run_id, name, payload, now),
            )
            if cur.rowcount:
                db.execute(
                    "UPDATE runs SET wake_at = MIN(COALESCE(wake_at, ?), ?) WHERE id=? AND status='waiting'",
                    (now, now, run_id),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return bool(cur.rowcount)

    async def close_request(self, run_id: str, signal: str) -> bool:
        db = self.db
        db.execute("BEGIN IMMEDIATE")  # no decision stored between the check and the close
        try:
            if db.execute("SELECT 1 FROM signals WHERE run_id=? AND name=?", (run_id, signal)).fetchone():
                db.execute("ROLLBACK")
                return False
            if self._has_inbox():
                db.execute("DELETE FROM approvals WHERE run_id=? AND name=?", (run_id, signal))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return True

    def _has_inbox(self) -> bool:
        """Whether the approvals table exists (schema 7), read again while not (another process may migrate)."""
        if not self._keeps_inbox:  # an older schema when opened: migrated since by another process?
            self._keeps_inbox = self._schema_version() >= _INBOX
        return self._keeps_inbox

    async def get_signals(self, run_id: str) -> dict[str, str | None]:
        return dict(self.db.execute("SELECT name, payload FROM signals WHERE run_id=?", (run_id,)).fetchall())

    async def open_approvals(
        self,
        *,
        run_id: str | None = None,
        workflow: str | None = None,
        after: tuple[float, str, str] | None = None,
        limit: int = 100,
    ) -> list[OpenApproval]:
        rows = self.db.execute(*approvals_query("?", run_id, workflow, after, limit))
        return [OpenApproval(workflow=r[0], name=r[1], event=_event(r[2:])) for r in rows]

    async def _audit_insert(self, e: AuditEntry, sign: Sign) -> None:
        db = self.db
        db.execute("BEGIN IMMEDIATE")  # the next seq of the whole log (a quick write lock, as for any write)
        try:
            self._insert_entry(e)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _insert_entry(self, e: AuditEntry, after: int = 0) -> int:
        """Number, sign and insert ``e`` inside the caller's write transaction; returns its number.
        ``after``: the number of the entry this transaction inserted last (none: 0, looked up)."""
        db = self.db
        e.seq = (after or db.execute("SELECT MAX(seq) FROM audit").fetchone()[0] or 0) + 1
        self._sign(e)
        db.execute(_AUDIT_INSERT, (e.seq, e.ts, e.actor, e.action, e.target, e.data, e.prev_hash, e.hash, e.chain, e.cseq))
        return e.seq

    async def _audit_chain_head(self, chain: str) -> tuple[int, str] | None:
        row = self.db.execute(
            "SELECT cseq, hash FROM audit WHERE chain = ? ORDER BY cseq DESC LIMIT 1", (chain,)
        ).fetchone()
        return (row[0], row[1]) if row else None

    async def _audit_insert_anchor(self, e: AuditEntry, sign: Sign) -> None:
        db = self.db
        db.execute("BEGIN IMMEDIATE")  # serialises anchor writers across processes: the anchor chain stays linear
        try:
            row = db.execute(
                "SELECT cseq, hash FROM audit WHERE chain = ? ORDER BY cseq DESC LIMIT 1", (ANCHOR_CHAIN,)
            ).fetchone()
            if row is None:  # the first anchor seals the legacy chain, if any
                legacy = db.execute("SELECT hash FROM audit WHERE chain IS NULL ORDER BY seq DESC LIMIT 1").fetchone()
                row = (0, legacy[0] if legacy else GENESIS)
            e.cseq, e.prev_hash = row[0] + 1, row[1]
            self._insert_entry(e)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # No INDEXED BY: a store opened unmigrated (podium db upgrade checks its caller first) lacks the
    # index; SQLite picks it where it exists (+seq: sorting the few rows beats scanning them all in order).
    async def governing_heads(self) -> dict[str, str]:
        return governing_stamps(self.db.execute(f"SELECT target, seq FROM audit WHERE {self._governing}"))

    async def governing_entries(self) -> list[AuditEntry]:
        return [entry_from_row(r) for r in self.db.execute(f"SELECT {AUDIT_COLUMNS} FROM audit WHERE {self._governing} ORDER BY +seq")]

    async def audit_user_put(self) -> bool:
        return self.db.execute(USER_PUT).fetchone() is not None

    async def audit_for(self, target: str) -> list[AuditEntry]:
        rows = self.db.execute(f"SELECT {AUDIT_COLUMNS} FROM audit WHERE target = ? ORDER BY seq", (target,))
        return [entry_from_row(r) for r in rows]

    async def list_audit(self, *, after: int = 0, limit: int = 1000) -> list[AuditEntry]:
        rows = self.db.execute(f"SELECT {AUDIT_COLUMNS} FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))
        return [entry_from_row(r) for r in rows]

    async def unfinished_owners(self) -> list[str]:
        rows = self.db.execute(
            f"SELECT DISTINCT owner FROM runs{self._by('runs_owned')} "
            "WHERE owner IS NOT NULL AND status IN (?,?,?)",
            _UNFINISHED,
        )
        return sorted(r[0] for r in rows)
