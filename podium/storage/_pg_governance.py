"""PostgreSQL tables of governance: the audit log's chains (:mod:`podium.storage._audit`) and the
key-value settings (users, tokens, kill switches, policies, versions). Mixed into :class:`PostgresStore`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from ..records import ANCHOR_CHAIN, GENESIS, AuditEntry
from ._audit import AUDIT_COLUMNS, GOVERNING, USER_PUT, ChainedAudit, Sign, entry_from_row
from ._pg_numbers import Numbers

#: Key of the advisory lock that serialises anchor appends (the anchor chain must stay linear).
AUDIT_LOCK_KEY = 0x706F6469756D0002
#: :func:`podium.records.governing_stamps`, computed by the server.
GOVERNING_STAMPS = (
    "SELECT target, encode(sha256(convert_to(string_agg(seq::text, ',' ORDER BY seq), 'UTF8')), 'hex') "
    f"FROM audit WHERE {GOVERNING} GROUP BY target"
)
AUDIT_INSERT = f"INSERT INTO audit ({AUDIT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
NEXT_SEQS = "SELECT nextval('audit_seq') FROM generate_series(1, %s)"
"""The audit log's next numbers (as many as asked, ascending)."""
#: First key of the advisory locks (two-key form: the second is the target's hash) under which an
#: entry of one target is numbered and written (:meth:`PgGovernance._audit_insert`).
TARGET_LOCK_CLASS = 0x706F6401
NEXT_OF_TARGET = (
    "WITH l AS MATERIALIZED (SELECT pg_advisory_xact_lock(%s, hashtext(%s))) SELECT nextval('audit_seq') FROM l"
)
"""The log's next number, drawn under the lock of the entry's target (held until the entry commits)."""


class PgGovernance(ChainedAudit):
    """Audit log and settings on PostgreSQL."""

    audit_page_size: int
    _numbers: Callable[[], Numbers]  # the audit numbers drawn ahead (PgNumbered, _pg_numbers.py)
    audit_between_pages: Callable[[int], Awaitable[None]] | None

    def _connection(self) -> AbstractAsyncContextManager[Any]:
        raise NotImplementedError  # PostgresStore provides it

    async def _audit_insert(self, e: AuditEntry, sign: Sign) -> None:
        # Numbered and written in one transaction holding a lock on the target: a number drawn
        # before the insert let another writer's entry of the same target, numbered after it, commit
        # first, and a reader then saw that entry without the one before it (a model's claim read as
        # its first owner, then an admin's earlier entry landing ahead of it: sixteenth session). Now
        # the entries of one target commit in the order of their numbers: a reader that sees one sees
        # every entry of its target numbered before it. Writers of different targets never wait.
        async with self._connection() as conn, conn.transaction():
            cur = await conn.execute(NEXT_OF_TARGET, (TARGET_LOCK_CLASS, e.target))
            self._numbers().drop()  # they would fail their guard now
            e.seq = (await cur.fetchone())[0]
            sign(e)
            await conn.execute(AUDIT_INSERT, (e.seq, e.ts, e.actor, e.action, e.target, e.data, e.prev_hash, e.hash, e.chain, e.cseq))

    async def _audit_insert_many(
        self,
        conn: psycopg.AsyncConnection[TupleRow],
        entries: list[AuditEntry],
        place: Callable[[AuditEntry], AuditEntry],
        seqs: list[int],
    ) -> None:
        """Write ``entries`` in this store's chain, in order, inside the caller's transaction (the runs
        of a group commit: ``place`` comes from :meth:`ChainedAudit._chained_many`), numbered by
        ``seqs`` (from the audit sequence, ascending: the chain follows the log's order)."""
        rows = []
        for entry, seq in zip(entries, seqs, strict=True):
            e = place(entry)
            e.seq = seq
            self._sign(e)
            rows.append((e.seq, e.ts, e.actor, e.action, e.target, e.data, e.prev_hash, e.hash, e.chain, e.cseq))
        await conn.cursor().executemany(AUDIT_INSERT, rows)

    async def _audit_chain_head(self, chain: str) -> tuple[int, str] | None:
        async with self._connection() as conn:
            cur = await conn.execute("SELECT cseq, hash FROM audit WHERE chain = %s ORDER BY cseq DESC LIMIT 1", (chain,))
            row = await cur.fetchone()
        return (row[0], row[1]) if row else None

    async def _audit_insert_anchor(self, e: AuditEntry, sign: Sign) -> None:
        async with self._connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK_KEY,))
            cur = await conn.execute(
                "SELECT cseq, hash FROM audit WHERE chain = %s ORDER BY cseq DESC LIMIT 1", (ANCHOR_CHAIN,)
            )
            row = await cur.fetchone()
            if row is None:  # the first anchor seals the legacy chain, if any
                cur = await conn.execute("SELECT hash FROM audit WHERE chain IS NULL ORDER BY seq DESC LIMIT 1")
                legacy = await cur.fetchone()
                row = (0, legacy[0] if legacy else GENESIS)
            e.cseq, e.prev_hash = row[0] + 1, row[1]
            # also the numbers of this store's next entries, drawn after the anchor's (_pg_numbers.py)
            numbers = self._numbers()
            numbers.drop()  # those kept would fail their guard after this draw
            cur = await conn.execute(NEXT_SEQS, (1 + numbers.extra(),))
            drawn = sorted(r[0] for r in await cur.fetchall())
            e.seq = drawn[0]
            numbers.keep(drawn[1:])
            sign(e)
            await conn.execute(AUDIT_INSERT, (e.seq, e.ts, e.actor, e.action, e.target, e.data, e.prev_hash, e.hash, e.chain, e.cseq))

    async def governing_heads(self) -> dict[str, str]:
        async with self._connection() as conn:
            cur = await conn.execute(GOVERNING_STAMPS)
            rows = await cur.fetchall()
        return dict(rows)

    async def governing_entries(self) -> list[AuditEntry]:
        async with self._connection() as conn:
            cur = await conn.execute(f"SELECT {AUDIT_COLUMNS} FROM audit WHERE {GOVERNING} ORDER BY seq")
            rows = await cur.fetchall()
        return [entry_from_row(r) for r in rows]

    async def audit_user_put(self) -> bool:
        async with self._connection() as conn:
            return await (await conn.execute(USER_PUT)).fetchone() is not None

    async def audit_for(self, target: str) -> list[AuditEntry]:
        async with self._connection() as conn:
            cur = await conn.execute(f"SELECT {AUDIT_COLUMNS} FROM audit WHERE target = %s ORDER BY seq", (target,))
            rows = await cur.fetchall()
        return [entry_from_row(r) for r in rows]

    async def read_audit(self) -> list[AuditEntry]:
        # Every page in one REPEATABLE READ snapshot: writers draw seqs before they commit, so an
        # entry committing between two pages below the last seq read would look deleted once an
        # anchor covering it is read in a later page.
        out: list[AuditEntry] = []
        async with self._connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            while True:
                cur = await conn.execute(
                    f"SELECT {AUDIT_COLUMNS} FROM audit WHERE seq > %s ORDER BY seq LIMIT %s",
                    (out[-1].seq if out else 0, self.audit_page_size),
                )
                if not (rows := await cur.fetchall()):
                    return out
                out.extend(entry_from_row(r) for r in rows)
                if self.audit_between_pages is not None:
                    await self.audit_between_pages(out[-1].seq)

    async def list_audit(self, *, after: int = 0, limit: int = 1000) -> list[AuditEntry]:
        async with self._connection() as conn:
            cur = await conn.execute(
                f"SELECT {AUDIT_COLUMNS} FROM audit WHERE seq > %s ORDER BY seq LIMIT %s", (after, limit)
            )
            rows = await cur.fetchall()
        return [entry_from_row(r) for r in rows]

    async def kv_put(self, namespace: str, key: str, value: str | None) -> None:
        async with self._connection() as conn:
            if value is None:
                await conn.execute("DELETE FROM kv WHERE ns = %s AND key = %s", (namespace, key))
            else:
                await conn.execute(
                    "INSERT INTO kv (ns, key, value) VALUES (%s, %s, %s) ON CONFLICT (ns, key) "
                    "DO UPDATE SET value = EXCLUDED.value, updated_at = extract(epoch from now())",
                    (namespace, key, value),
                )

    async def kv_get(self, namespace: str, key: str) -> str | None:
        async with self._connection() as conn:
            cur = await conn.execute("SELECT value FROM kv WHERE ns = %s AND key = %s", (namespace, key))
            row = await cur.fetchone()
        return row[0] if row else None

    async def kv_list(self, namespace: str) -> dict[str, str]:
        async with self._connection() as conn:
            cur = await conn.execute("SELECT key, value FROM kv WHERE ns = %s ORDER BY key", (namespace,))
            return {r[0]: r[1] for r in await cur.fetchall()}

    async def kv_count(self, namespace: str) -> int:
        async with self._connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM kv WHERE ns = %s", (namespace,))
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def kv_swap(self, namespace: str, key: str, expected: str | None, value: str | None) -> bool:
        if expected is None and value is None:
            return await self.kv_get(namespace, key) is None
        args: tuple[str | None, ...]
        if expected is None:
            sql, args = (
                "INSERT INTO kv (ns, key, value) VALUES (%s, %s, %s) ON CONFLICT (ns, key) DO NOTHING",
                (namespace, key, value),
            )
        elif value is None:
            sql, args = "DELETE FROM kv WHERE ns = %s AND key = %s AND value = %s", (namespace, key, expected)
        else:
            sql, args = (
                "UPDATE kv SET value = %s, updated_at = extract(epoch from now()) WHERE ns = %s AND key = %s AND value = %s",
                (value, namespace, key, expected),
            )
        async with self._connection() as conn:
            cur = await conn.execute(sql, args)
            return cur.rowcount == 1

    async def kv_incr(self, namespace: str, key: str, amount: float) -> float:
        async with self._connection() as conn:
            cur = await conn.execute(
                "INSERT INTO kv (ns, key, value) VALUES (%s, %s, %s::double precision::text) "
                "ON CONFLICT (ns, key) DO UPDATE SET value = (kv.value::double precision + %s)::text, "
                "updated_at = extract(epoch from now()) RETURNING value",
                (namespace, key, float(amount), float(amount)),
            )
            row = await cur.fetchone()
        return float(row[0]) if row else float(amount)
