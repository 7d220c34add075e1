"""Audit numbers drawn ahead on PostgreSQL, so that a lone run's start and its end each take one
round trip instead of two.

An audit entry's signature covers its ``seq``, so its number must be known before the statement
that writes it: drawn alone, that costs a round trip before every run's start and end. Instead, the
store keeps the numbers a previous draw took beyond what it needed (:class:`Numbers`, at most
:data:`AHEAD`), and writes a start or an end with one of them in one statement whose every write
is conditional on a guard: ``pg_sequence_last_value('audit_seq')`` is still the last number that
draw took (and no entry numbered as high is in the log: ``_GUARD``, against a sequence that lost
WAL). Then no number has been drawn since, by any process, so every entry already committed
has a smaller one: the log's order still follows the order in which its writes happened (an entry
written after another one committed has the larger number), and the numbers of one writer's chain
still ascend. If the guard fails (another writer, an anchor or a direct entry drew since), the
statement writes nothing and the write is made the usual way (a number drawn first), and the store
draws no numbers ahead for a second (several processes writing at once would make every guard
fail). The numbers not used are gaps, as a rolled-back transaction leaves. Only the chain's holder
(``ChainedAudit._chained_many``: one write at a time per store) takes or keeps numbers.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import TupleRow

from ..errors import LeaseLost, NotFound
from ..records import AuditEntry, Event, RunRecord
from ._audit import AUDIT_COLUMNS
from ._pg_runs import _EVENT_COLS, _FEW, _RUN_COLS, _RUN_FIELDS, _create_events, _run_params

#: Numbers drawn ahead at a time (32 runs' starts and ends of 16).
AHEAD = 32
#: Seconds without drawing ahead after a guard failed.
BACKOFF = 1.0

#: True when no audit number was drawn since ``%s`` (the last number of the store's draw) and no
#: entry numbered ``%s`` (the number to write) or above is in the log. The second half holds whenever
#: the first does, unless the sequence handed numbers out again: a server that lost the tail of its
#: WAL (a crash with ``synchronous_commit`` off, a failover to an asynchronous standby) comes back
#: with the sequence below the numbers a surviving process keeps, and the others' draws can bring it
#: back to exactly that process's last number (tests/test_attack_pgrev.py). ``max(seq)`` reads the end
#: of audit_pkey whatever the plan (``NOT EXISTS (... seq >= %s)`` is a scan of the whole table in
#: the generic plan of a prepared statement).
_GUARD = (
    "g AS MATERIALIZED (SELECT coalesce(pg_sequence_last_value('audit_seq') = %s::bigint "
    "AND coalesce((SELECT max(seq) FROM audit), 0) < %s::bigint, FALSE) AS ok)"
)
_CASTS = {
    "created_at": "float8", "started_at": "float8", "finished_at": "float8", "lease_expires_at": "float8",
    "cancel_requested": "boolean", "wake_at": "float8", "priority": "int",
}  # fmt: skip
_RUN_SELECT = ", ".join("%s" + (f"::{_CASTS[f]}" if f in _CASTS else "") for f in _RUN_FIELDS)
_EVENT_ROW = "(%s, %s::bigint, %s, %s::float8, %s, %s::int, %s::int, %s::int, %s)"
_EVENT_ARRAYS = (
    "unnest(%s::text[], %s::bigint[], %s::text[], %s::float8[], %s::text[], %s::int[], %s::int[], %s::int[], %s::text[])"
)
_AUDIT_SELECT = "%s::bigint, %s::float8, %s, %s, %s, %s, %s, %s, %s, %s::bigint"

#: A new run with its events (``_pg_runs._create_events``, between the two) and its start entry, all
#: only if the guard holds; returns (guard held, run is new).
CREATE_HEAD = (
    f"WITH {_GUARD}, r AS (INSERT INTO runs ({_RUN_COLS}) SELECT {_RUN_SELECT} FROM g WHERE g.ok "
    "ON CONFLICT (id) DO NOTHING RETURNING id)"
)
CREATE_TAIL = (
    f", a AS (INSERT INTO audit ({AUDIT_COLUMNS}) SELECT {_AUDIT_SELECT} WHERE EXISTS (SELECT 1 FROM r)) "
    "SELECT (SELECT ok FROM g), (SELECT count(*) FROM r)"
)


@functools.lru_cache(maxsize=64)
def end_statement(n_events: int, sets: str | None) -> str:
    """A run's end (its last events, its audit entry, its final state with ``sets``), all only if the
    guard holds; returns whether it held. Parameters: the guard's number, the events' (as
    ``_pg_runs._insert_events`` gives them), the entry's row, the update's values and the run's id."""
    if n_events <= _FEW:
        rows = f"(VALUES {', '.join([_EVENT_ROW] * n_events)}) AS v"
    else:
        rows = f"{_EVENT_ARRAYS} AS v"
    sql = (
        f"WITH {_GUARD}, e AS (INSERT INTO events ({_EVENT_COLS}) SELECT v.* FROM {rows}, g WHERE g.ok), "
        f"a AS (INSERT INTO audit ({AUDIT_COLUMNS}) SELECT {_AUDIT_SELECT} FROM g WHERE g.ok)"
    )
    if sets is not None:
        sql += f", u AS (UPDATE runs SET {sets} WHERE id = %s AND (SELECT ok FROM g))"
    return sql + " SELECT ok FROM g"


class Numbers:
    """The audit numbers this store drew ahead, and the last number of that draw (the guard's)."""

    __slots__ = ("_after", "_kept", "_top", "on")

    def __init__(self) -> None:
        self._kept: deque[int] = deque()
        self._top = 0
        self._after = 0.0
        self.on = True
        """False once the server refused the guard (no privilege on the sequence): never drawn ahead."""

    def extra(self) -> int:
        """How many numbers to draw beyond those needed now."""
        return AHEAD if self.on and not self._kept and time.monotonic() >= self._after else 0

    def keep(self, numbers: Sequence[int]) -> None:
        """``numbers`` (ascending, the highest of one draw) are for the next entries."""
        if numbers:
            self._kept = deque(numbers)
            self._top = numbers[-1]

    def take(self) -> tuple[int, int] | None:
        """(a number, the guard's number), or None: none kept."""
        return (self._kept.popleft(), self._top) if self._kept else None

    @staticmethod
    def guard(taken: tuple[int, int]) -> list[int]:
        """The guard's parameters (``_GUARD``) for a number ``take`` gave."""
        return [taken[1], taken[0]]

    def drop(self) -> None:
        """Numbers were drawn since (by this store): those kept would fail their guard."""
        self._kept.clear()

    def stale(self) -> None:
        """A guard failed: another writer draws too; draw none ahead for a while."""
        self._kept.clear()
        self._after = time.monotonic() + BACKOFF



def _number_reused(exc: pg_errors.UniqueViolation) -> bool:
    """Whether the number drawn ahead is another entry's, not yet committed when the guard looked
    (the sequence handed it out again, ``_GUARD``): nothing was written, the write goes the usual way."""
    return exc.diag.constraint_name == "audit_pkey"


def audit_row(e: AuditEntry) -> list[Any]:
    """The parameters of an entry's row (``AUDIT_COLUMNS``)."""
    return [e.seq, e.ts, e.actor, e.action, e.target, e.data, e.prev_hash, e.hash, e.chain, e.cseq]


class PgNumbered:
    """The writes of a lone run's start and end with a number drawn ahead (mixed into PostgresStore)."""

    _sign: Callable[[AuditEntry], None]  # ChainedAudit provides it

    def _numbers(self) -> Numbers:
        """The audit numbers drawn ahead."""
        numbers: Numbers | None = self.__dict__.get("_audit_numbers")
        if numbers is None:
            numbers = self.__dict__["_audit_numbers"] = Numbers()
        return numbers

    async def _numbered(self, conn: psycopg.AsyncConnection[TupleRow], sql: str, params: list[Any], ev: Event) -> bool:
        """Run a statement guarded by the numbers drawn ahead (``_pg_numbers.py``): whether its guard
        held (it wrote); if not, it wrote nothing and no numbers are drawn ahead for a while."""
        try:
            cur = await conn.execute(sql, params)
            row = await cur.fetchone()
        except pg_errors.InsufficientPrivilege:  # may not read the sequence: the usual way, always
            self._numbers().on = False
            self._numbers().drop()
            return False
        except pg_errors.UniqueViolation as exc:
            if not _number_reused(exc):
                raise LeaseLost(f"event {ev.seq} of run {ev.run_id} already written: another engine owns it") from exc
            row = None
        except pg_errors.ForeignKeyViolation as exc:
            raise NotFound(f"run {ev.run_id} does not exist") from exc
        if row is None or not row[0]:
            self._numbers().stale()
            return False
        return True

    async def _create_numbered(
        self,
        conn: psycopg.AsyncConnection[TupleRow],
        run: RunRecord,
        events: Sequence[Event],
        audit: AuditEntry,
        place: Callable[[AuditEntry], AuditEntry],
    ) -> bool | None:
        """A lone new run, its events and its start entry in one statement, with a number drawn ahead
        (``_pg_numbers.py``): whether the run was new; None if no number was kept or its guard failed
        (nothing written: create it the usual way)."""
        taken = self._numbers().take()
        if taken is None:
            return None
        e = place(audit)
        e.seq = taken[0]
        self._sign(e)
        events_sql, events_params = _create_events(events)
        params = [*Numbers.guard(taken), *_run_params(run), *events_params, *audit_row(e)]
        try:
            cur = await conn.execute(CREATE_HEAD + events_sql + CREATE_TAIL, params)
            row = await cur.fetchone()
        except pg_errors.InsufficientPrivilege:
            self._numbers().on = False
            row = None
        except pg_errors.UniqueViolation as exc:
            if not _number_reused(exc):  # two events with one seq
                raise LeaseLost(f"duplicate event sequence numbers in new run {run.id}") from exc
            row = None
        except pg_errors.ForeignKeyViolation as exc:
            raise ValueError("events given with a new run belong to another run") from exc
        if row is None or not row[0]:
            self._numbers().stale()
            e.seq = 0  # not written: the entry placed next takes its place in the chain
            return None
        if not row[1]:
            e.seq = 0  # the run existed: no entry
        return bool(row[1])
