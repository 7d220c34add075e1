"""A server starting on a store without user rows asks whether the store ever had users: a
``user.put`` in its audit log (users are disabled, never deleted). That question read the whole log
at every start of a local store (``server/auth.py`` ``had_users``); it is one indexed lookup now
(``Store.audit_user_put``, index ``audit_user_put`` on SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

import podium
from podium.records import AuditEntry
from podium.server.auth import had_users


def _no_full_read(store: Any) -> None:
    """Fail the test if anything pages through the whole audit log."""

    async def refused(**_kw: Any) -> list[AuditEntry]:
        raise AssertionError("the whole audit log was read to find a user.put")

    store.list_audit = refused


async def _local_entries(c: podium.Client, n: int) -> None:
    """``n`` entries of a store with no users (kill switches set and cleared, as an operator does)."""
    for i in range(n):
        await c.set_switch("workflow", f"w{i}", reason="drill")


async def test_a_store_that_had_users_is_told_from_its_log_once_the_rows_are_gone(store_url: str) -> None:
    from podium.governance.accounts import USERS

    async with podium.Client(store_url) as c:
        await _local_entries(c, 30)
        assert not await c.store.audit_user_put()
        assert not await had_users(c)  # a local store: its log holds no user.put
        await c.create_user("root", ["admin"])
        await _local_entries(c, 5)
        for name in await c.store.kv_list(USERS):  # a database writer deletes the rows behind the engine
            await c.store.kv_put(USERS, name, None)
        c.governance.users_exist = False  # as a server starting on that store finds it
        if not store_url.startswith("memory"):
            _no_full_read(c.store)  # the SQL stores look the entry up in their index
        assert await c.store.audit_user_put()
        assert await had_users(c)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_the_lookup_of_a_user_put_reads_its_index(kind: str, tmp_path: Any, request: Any) -> None:
    """The query is answered from the partial index of ``user.put`` entries (at most one entry
    read), not from a scan of the log: the plan names the index."""
    url = f"sqlite:///{tmp_path}/podium.db" if kind == "sqlite" else request.getfixturevalue("pg_url")
    from podium.storage._audit import USER_PUT

    async with podium.Client(url) as c:
        await _local_entries(c, 3)
        if kind == "sqlite":
            plan = " ".join(str(r) for r in c.store.db.execute(f"EXPLAIN QUERY PLAN {USER_PUT}"))
        else:
            async with c.store._connection() as conn:
                await conn.execute("SET enable_seqscan = off")  # a tiny table: show the index serves it
                cur = await conn.execute(f"EXPLAIN {USER_PUT}")
                plan = " ".join(r[0] for r in await cur.fetchall())
                await conn.execute("RESET enable_seqscan")
        assert "audit_user_put" in plan, plan
