"""PostgreSQL tables of governance: the hash-chained audit log and the key-value settings
(users, tokens, kill switches, policies, versions). Mixed into :class:`PostgresStore`."""

from __future__ import annotations

import dataclasses
from contextlib import AbstractAsyncContextManager
from typing import Any

from .._auditkey import AuditKeys
from ..records import GENESIS, AuditEntry, chain_body

#: Key of the advisory lock that serialises audit appends (the chain must stay linear).
AUDIT_LOCK_KEY = 0x706F6469756D0002


class PgGovernance:
    """Audit log and settings on PostgreSQL."""

    def _connection(self) -> AbstractAsyncContextManager[Any]:
        raise NotImplementedError  # PostgresStore provides it

    audit_keys: AuditKeys  # Store provides it

    async def append_audit(self, entry: AuditEntry) -> AuditEntry:
        e = dataclasses.replace(entry)
        async with self._connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK_KEY,))
            cur = await conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            row = await cur.fetchone()
            e.seq, e.prev_hash = (row[0] + 1, row[1]) if row else (1, GENESIS)
            e.hash = self.audit_keys.sign(chain_body(e.prev_hash, e))
            await conn.execute(
                "INSERT INTO audit (seq, ts, actor, action, target, data, prev_hash, hash) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (e.seq, e.ts, e.actor, e.action, e.target, e.data, e.prev_hash, e.hash),
            )
        self.audit_keys.note_head(e.seq, e.hash)
        return e

    async def audit_for(self, target: str) -> list[AuditEntry]:
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT seq, ts, actor, action, target, data, prev_hash, hash FROM audit WHERE target = %s "
                "ORDER BY seq",
                (target,),
            )
            rows = await cur.fetchall()
        return [
            AuditEntry(
                seq=r[0], ts=r[1], actor=r[2], action=r[3], target=r[4], data=r[5], prev_hash=r[6], hash=r[7]
            )
            for r in rows
        ]

    async def list_audit(self, *, after: int = 0, limit: int = 1000) -> list[AuditEntry]:
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT seq, ts, actor, action, target, data, prev_hash, hash FROM audit WHERE seq > %s "
                "ORDER BY seq LIMIT %s",
                (after, limit),
            )
            rows = await cur.fetchall()
        return [
            AuditEntry(
                seq=r[0], ts=r[1], actor=r[2], action=r[3], target=r[4], data=r[5], prev_hash=r[6], hash=r[7]
            )
            for r in rows
        ]

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
