"""PostgreSQL reads over many runs: counts by status and the timers due soon, each answered from an
index (``runs_status``, ``runs_wake``). Mixed into :class:`PostgresStore`."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from ..records import RunStatus


class PgRuns:
    """Counting and timer reads on PostgreSQL."""

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

    async def due_timers(self, before: float, *, limit: int = 10_000) -> list[tuple[str, float]]:
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT id, wake_at FROM runs WHERE status = 'waiting' AND wake_at <= %s ORDER BY wake_at LIMIT %s",
                (before, limit),
            )
            return [(r[0], r[1]) for r in await cur.fetchall()]
