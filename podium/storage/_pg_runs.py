"""PostgreSQL rows of runs and events (their columns, parameters and insert statements, shared by
:mod:`podium.storage.postgres`), and reads over many runs: counts by status, the timers due soon and
the open approval requests, each answered from an index (``runs_status``, ``runs_wake``,
``approvals_inbox``). :class:`PgRuns` is mixed into
:class:`PostgresStore`."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from ..errors import NotFound
from ..records import Event, RunRecord, RunStatus
from ._base import APPROVAL_SIGNAL, OpenApproval, approvals_query, run_from_row

_RUN_FIELDS = (
    "id", "workflow", "version", "status", "input", "output", "error", "created_at", "started_at",
    "finished_at", "parent_run_id", "parent_step", "forked_from", "fork_step", "workflow_ref", "owner",
    "lease_expires_at", "cancel_requested", "wake_at", "queue", "priority", "tenant", "labels",
)  # fmt: skip
_RUN_COLS = ", ".join(_RUN_FIELDS)
_EVENT_COLS = "run_id, seq, type, ts, step, iteration, idx, attempt, data"
_EVENT_INSERT = f"INSERT INTO events ({_EVENT_COLS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
_EVENTS_INSERT = (
    f"INSERT INTO events ({_EVENT_COLS}) SELECT * FROM unnest("
    "%s::text[], %s::bigint[], %s::text[], %s::float8[], %s::text[], %s::int[], %s::int[], %s::int[], %s::text[])"
)
_CREATE_RUN = (
    f"WITH r AS (INSERT INTO runs ({_RUN_COLS}) VALUES ({', '.join(['%s'] * len(_RUN_FIELDS))}) "
    "ON CONFLICT (id) DO NOTHING RETURNING id)"
)
_CREATE_EVENTS = f", e AS ({_EVENTS_INSERT} WHERE EXISTS (SELECT 1 FROM r))"
# A new run's one event (``run_started``, nearly always): scalar parameters, as arrays cost the
# client ~10 µs of CPU each to adapt (nine of them per event).
_CREATE_EVENT = (
    f", e AS (INSERT INTO events ({_EVENT_COLS}) SELECT %s, %s::bigint, %s, %s::float8, %s, %s::int, %s::int, "
    "%s::int, %s WHERE EXISTS (SELECT 1 FROM r))"
)
#: Up to this many events are written as rows of VALUES (scalar parameters), more as arrays (unnest).
_FEW = 4


_run = run_from_row


def _run_params(run: RunRecord) -> tuple[Any, ...]:
    return (
        run.id, run.workflow, run.version, RunStatus(run.status).value, run.input, run.output, run.error,
        run.created_at, run.started_at, run.finished_at, run.parent_run_id, run.parent_step,
        run.forked_from, run.fork_step, run.workflow_ref, run.owner, run.lease_expires_at,
        bool(run.cancel_requested), run.wake_at, run.queue, run.priority, run.tenant, run.labels,
    )  # fmt: skip


def _event_row(e: Event) -> tuple[Any, ...]:
    return (e.run_id, e.seq, e.type, e.ts, e.step, e.iteration, e.index, e.attempt, e.data)


_VALUES = [_EVENT_INSERT] + [
    _EVENT_INSERT + ", (%s, %s, %s, %s, %s, %s, %s, %s, %s)" * (n - 1) for n in range(2, _FEW + 1)
]


def _insert_events(events: Sequence[Event]) -> tuple[str, list[Any]]:
    """One statement inserting ``events``: rows of VALUES for a few (a run's end writes two), unnest
    of column arrays for more (so that the statement texts, each a prepared plan, stay few)."""
    if len(events) <= _FEW:
        return _VALUES[len(events) - 1], [v for e in events for v in _event_row(e)]
    return _EVENTS_INSERT, _event_columns(events)


def _create_events(events: Sequence[Event]) -> tuple[str, list[Any]]:
    """The part of a new run's statement that writes its events if the run is new (after ``_CREATE_RUN``)."""
    if not events:
        return "", []
    if len(events) == 1:
        return _CREATE_EVENT, list(_event_row(events[0]))
    return _CREATE_EVENTS, _event_columns(events)


def _event_columns(events: Sequence[Event]) -> list[Any]:
    return [list(col) for col in zip(*map(_event_row, events), strict=True)]


#: The channel that wakes the workers (a run to take up).
CHANNEL = "podium_work"


class PgRuns:
    """Counting, existence, timer and approvals-inbox reads, and signals, on PostgreSQL."""

    def _connection(self) -> AbstractAsyncContextManager[Any]:
        raise NotImplementedError  # PostgresStore provides it

    # -- signals and wake-ups -----------------------------------------------------------------

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
        # The run's row is locked first, in a statement of its own (the checks after it then see
        # what a concurrent close_request committed): a decision and its wait's timeout are serialised.
        async with self._connection() as conn, conn.transaction():
            cur = await conn.execute("SELECT 1 FROM runs WHERE id = %s FOR UPDATE", (run_id,))
            if await cur.fetchone() is None:
                raise NotFound(f"run {run_id} does not exist")
            if not copied and name.startswith(APPROVAL_SIGNAL) and await self._has_inbox(conn):
                cur = await conn.execute("SELECT seq FROM approvals WHERE run_id = %s AND name = %s", (run_id, name))
                asked = await cur.fetchone()
                if asked is None or (request is not None and asked[0] != request):
                    return False  # no longer open (timed out, decided), or a later request of the same name
            cur = await conn.execute(
                "WITH s AS (INSERT INTO signals (run_id, name, payload, created_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (run_id, name) DO NOTHING RETURNING run_id), "
                "u AS (UPDATE runs SET wake_at = LEAST(COALESCE(wake_at, %s), %s) "
                "WHERE id IN (SELECT run_id FROM s) AND status = 'waiting' RETURNING id) "
                "SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM u), pg_notify(%s, '')",
                (run_id, name, payload, now, now, now, CHANNEL),
            )
            row = await cur.fetchone()
        return bool(row and row[0])

    async def _has_inbox(self, conn: Any) -> bool:
        """Whether the approvals inbox table exists (schema 7; a store opened without migrating
        may be older). Known once seen: a table is never dropped."""
        if not self.__dict__.get("_inbox_table"):
            cur = await conn.execute("SELECT to_regclass('approvals') IS NOT NULL")
            row = await cur.fetchone()
            self.__dict__["_inbox_table"] = bool(row and row[0])
        return bool(self.__dict__["_inbox_table"])

    async def close_request(self, run_id: str, signal: str) -> bool:
        async with self._connection() as conn, conn.transaction():
            await conn.execute("SELECT 1 FROM runs WHERE id = %s FOR UPDATE", (run_id,))  # as send_signal
            cur = await conn.execute("SELECT 1 FROM signals WHERE run_id = %s AND name = %s", (run_id, signal))
            if await cur.fetchone() is not None:
                return False
            if await self._has_inbox(conn):
                await conn.execute("DELETE FROM approvals WHERE run_id = %s AND name = %s", (run_id, signal))
        return True

    async def get_signals(self, run_id: str) -> dict[str, str | None]:
        async with self._connection() as conn:
            cur = await conn.execute("SELECT name, payload FROM signals WHERE run_id = %s", (run_id,))
            return {r[0]: r[1] for r in await cur.fetchall()}

    async def count_runs(self, statuses: Sequence[RunStatus]) -> dict[RunStatus, int]:
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT status, count(*) FROM runs WHERE status = ANY(%s::text[]) GROUP BY status",
                ([RunStatus(s).value for s in statuses],),
            )
            found = {RunStatus(r[0]): int(r[1]) for r in await cur.fetchall()}
        return {RunStatus(s): found.get(RunStatus(s), 0) for s in statuses}

    async def existing_runs(self, run_ids: Sequence[str]) -> set[str]:
        if not run_ids:
            return set()
        async with self._connection() as conn:
            cur = await conn.execute("SELECT id FROM runs WHERE id = ANY(%s::text[])", (list(run_ids),))
            return {r[0] for r in await cur.fetchall()}

    async def due_timers(self, before: float, *, limit: int = 10_000) -> list[tuple[str, float]]:
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT id, wake_at FROM runs WHERE status = 'waiting' AND wake_at <= %s ORDER BY wake_at LIMIT %s",
                (before, limit),
            )
            return [(r[0], r[1]) for r in await cur.fetchall()]

    async def open_approvals(
        self,
        *,
        run_id: str | None = None,
        workflow: str | None = None,
        after: tuple[float, str, str] | None = None,
        limit: int = 100,
    ) -> list[OpenApproval]:
        async with self._connection() as conn:
            cur = await conn.execute(*approvals_query("%s", run_id, workflow, after, limit))
            rows = await cur.fetchall()
        return [OpenApproval(workflow=r[0], name=r[1], event=_event(r[2:])) for r in rows]


def _event(r: Sequence[Any]) -> Event:
    return Event(run_id=r[0], seq=r[1], type=r[2], ts=r[3], step=r[4], iteration=r[5], index=r[6], attempt=r[7], data=r[8])
