"""PostgreSQL rows of runs and events (their columns, parameters and insert statements, shared by
:mod:`podium.storage.postgres`), and reads over many runs: counts by status, the timers due soon and
the open approval requests, each answered from an index (``runs_status``, ``runs_wake``,
``approvals_inbox``). :class:`PgRuns` is mixed into
:class:`PostgresStore`."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from ..records import Event, RunRecord, RunStatus
from ._base import OpenApproval, approvals_query, run_from_row

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


def _insert_events(events: Sequence[Event]) -> tuple[str, list[Any]]:
    """One statement inserting ``events``: VALUES for one, unnest of column arrays for several (so
    the statement text, and its prepared plan, does not depend on the batch size)."""
    if len(events) == 1:
        return _EVENT_INSERT, list(_event_row(events[0]))
    return _EVENTS_INSERT, _event_columns(events)


def _event_columns(events: Sequence[Event]) -> list[Any]:
    return [list(col) for col in zip(*map(_event_row, events), strict=True)]


class PgRuns:
    """Counting, existence, timer and approvals-inbox reads on PostgreSQL."""

    def _connection(self) -> AbstractAsyncContextManager[Any]:
        raise NotImplementedError  # PostgresStore provides it

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
