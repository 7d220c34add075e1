"""Retention and erasure on PostgreSQL (``podium memory prune``, ``podium memory forget``):
deleting finished runs and redacting stored payloads, each with its audit records in the same
transaction. Mixed into :class:`podium.storage.postgres.PostgresStore`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import psycopg
from psycopg.rows import TupleRow

from .._redact import note_erasure, stored_forms
from ..records import AuditEntry
from ._base import FINISHED, PAYLOADS, PruneRecord, Redaction, RedactRecord, redacted_rows, redaction_sql
from ._pg_governance import NEXT_SEQS, PgGovernance
from ._pg_runs import _EVENT_COLS, _RUN_COLS, _event, _run

_Conn = psycopg.AsyncConnection[TupleRow]
#: Places an audit entry in the chain held for the transaction (``ChainedAudit._chained_many``).
_Place = Callable[[AuditEntry], AuditEntry]


class PgErasure(PgGovernance):
    async def finished_run_ids(self, *, before: float) -> list[str]:
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT id FROM runs WHERE status = ANY(%s::text[]) AND finished_at IS NOT NULL "
                "AND finished_at < %s ORDER BY finished_at, id",
                (list(FINISHED), before),
            )
            return [r[0] for r in await cur.fetchall()]

    async def delete_runs(self, run_ids: Sequence[str], *, record: PruneRecord | None = None) -> list[str]:
        ids = list(dict.fromkeys(run_ids))
        note_erasure()  # what an engine of this process kept of them is read again (and found gone)
        if not ids:
            return []
        if record is None:
            found = await self._delete_tx(ids, None, None)
        else:
            async with self._chained_many() as place:  # held until the transaction committed
                found = await self._delete_tx(ids, record, place)
        kept = set(found)
        return [rid for rid in ids if rid in kept]

    async def _delete_tx(self, ids: list[str], record: PruneRecord | None, place: _Place | None) -> list[str]:
        async with self._connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT id FROM runs WHERE id = ANY(%s::text[]) AND status = ANY(%s::text[]) FOR UPDATE",
                (ids, list(FINISHED)),
            )
            found: list[str] = [r[0] for r in await cur.fetchall()]
            if found:
                for table in ("events", "signals"):
                    await conn.execute(f"DELETE FROM {table} WHERE run_id = ANY(%s::text[])", (found,))
                await conn.execute("DELETE FROM runs WHERE id = ANY(%s::text[])", (found,))
                if record is not None and place is not None:
                    await self._record(conn, [record(rid) for rid in found], place)
        return found

    async def redact_payloads(
        self, texts: Sequence[str], replacement: str, *, record: RedactRecord | None = None
    ) -> Redaction:
        try:
            if record is None:
                return await self._redact_tx(texts, replacement, None, None)
            async with self._chained_many() as place:
                return await self._redact_tx(texts, replacement, record, place)
            return Redaction()  # not reached (for type checkers: the context manager could swallow)
        finally:  # done or not, what an engine of this process kept from before is read again
            note_erasure()

    async def _redact_tx(
        self, texts: Sequence[str], replacement: str, record: RedactRecord | None, place: _Place | None
    ) -> Redaction:
        counts = {"runs": 0, "events": 0, "signals": 0}
        touched: set[str] = set()
        forms = stored_forms(texts)
        async with self._connection() as conn, conn.transaction():
            for table, col, key in PAYLOADS if forms else ():
                select, update = redaction_sql(table, col, key, len(forms), "strpos", "%s")
                cur = await conn.execute(select + " FOR UPDATE", forms)  # nobody writes them meanwhile
                for new, row_key, hits in redacted_rows(await cur.fetchall(), texts, replacement):
                    await conn.execute(update, (new, *row_key))
                    counts[table] += hits
                    touched.add(row_key[0])
            if touched and record is not None and place is not None:
                entries = []
                for rid in sorted(touched):
                    cur = await conn.execute(f"SELECT {_RUN_COLS} FROM runs WHERE id = %s", (rid,))
                    row = await cur.fetchone()
                    cur = await conn.execute(f"SELECT {_EVENT_COLS} FROM events WHERE run_id = %s ORDER BY seq", (rid,))
                    entries.append(record(rid, _run(row) if row else None, [_event(r) for r in await cur.fetchall()]))
                await self._record(conn, entries, place)
        return Redaction(
            runs=counts["runs"], events=counts["events"], signals=counts["signals"], run_ids=sorted(touched)
        )

    async def _record(self, conn: _Conn, entries: list[AuditEntry], place: _Place) -> None:
        """Write ``entries`` in this store's chain inside the caller's transaction."""
        cur = await conn.execute(NEXT_SEQS, (len(entries),))
        seqs = sorted(r[0] for r in await cur.fetchall())  # in chain order: the chain follows the log's order
        await self._audit_insert_many(conn, entries, place, seqs)
