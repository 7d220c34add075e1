"""Review of the scale layer (2026-12-06, seventh session): the durability setting on every
connection a store opens. ``durability = "power"`` promises that a write is on disk before it is
acknowledged; these tests look at each connection that writes the store's database (the run store's
own, and the one the memory, knowledge and quarantine tables share with it, opened later), on
SQLite (``PRAGMA synchronous``) and on PostgreSQL (``synchronous_commit``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from podium import Client, Workflow
from podium._sqldb import database_for, open_database
from podium.memory import Memory
from podium.storage.sqlite import SQLiteStore

FULL, NORMAL = 2, 1


def _synchronous(conn: object) -> int:
    return int(conn.execute("PRAGMA synchronous").fetchone()[0])  # type: ignore[attr-defined]


async def test_power_mode_reaches_the_connection_that_memory_and_the_quarantine_share_with_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failed before: the memory/knowledge/quarantine connection to the store's own file was opened
    with synchronous=NORMAL whatever the store's setting, so a memory written (or forgotten) through
    the API was acknowledged before it reached the disk."""
    monkeypatch.delenv("PODIUM_DURABILITY", raising=False)
    store = SQLiteStore(f"sqlite:///{tmp_path}/p.db", durability="power")
    async with Client(store) as c:
        assert _synchronous(c.store.db) == FULL  # type: ignore[attr-defined]
        memory = Memory(c.store)
        await memory.open()
        try:
            await memory.remember("customer:1", "a fact")
            assert _synchronous(memory.db.conn) == FULL  # type: ignore[attr-defined]
        finally:
            await memory.close()
        shared = database_for(c.store)  # the quarantine's and the knowledge bases' connection too
        await shared.open()
        try:
            assert _synchronous(shared.conn) == FULL  # type: ignore[attr-defined]
        finally:
            await shared.close()
    crash = SQLiteStore(f"sqlite:///{tmp_path}/c.db", durability="crash")
    db = database_for(crash)
    await db.open()
    try:
        assert _synchronous(db.conn) == NORMAL  # type: ignore[attr-defined]
    finally:
        await db.close()


async def test_a_memory_opened_by_url_follows_the_durability_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_DURABILITY", "power")
    db = open_database(f"sqlite:///{tmp_path}/m.db")
    await db.open()
    try:
        assert _synchronous(db.conn) == FULL  # type: ignore[attr-defined]
    finally:
        await db.close()


def _with_sync_off(pg_url: str) -> str:
    """The database's own default: commits do not wait for their WAL flush."""
    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    return pg_url


async def _settings(pool_user: Callable[[], object], n: int) -> set[str]:
    """``synchronous_commit`` as seen by ``n`` connections held at once (so the pool opens more)."""
    seen: set[str] = set()
    gate = asyncio.Event()
    ready = 0

    async def one() -> None:
        nonlocal ready
        async with pool_user() as conn:  # type: ignore[attr-defined]
            cur = await conn.execute("SHOW synchronous_commit")
            seen.add((await cur.fetchone())[0])
            ready += 1
            if ready == n:
                gate.set()
            await gate.wait()  # every connection stays borrowed until all were: n distinct ones

    await asyncio.gather(*(one() for _ in range(n)))
    return seen


async def test_power_mode_on_postgresql_makes_every_commit_wait_for_its_flush(pg_url: str) -> None:
    """Failed before: the setting was ignored on PostgreSQL, so a database (or role, or server)
    with synchronous_commit=off acknowledged commits that a power loss could take back. Now power
    mode turns it on for every connection of the store's pool, including ones opened later, and for
    the memory tables' pool; crash mode keeps the server's setting."""
    from podium.storage.postgres import PostgresStore

    url = _with_sync_off(pg_url)
    store = PostgresStore(url, durability="power", min_size=1, max_size=4)
    await store.open()
    try:
        assert await _settings(store._connection, 4) == {"on"}
        db = database_for(store)
        await db.open()
        try:
            assert await _settings(db._pool.connection, 3) == {"on"}  # type: ignore[attr-defined]
        finally:
            await db.close()
    finally:
        await store.close()
    crash = PostgresStore(url, durability="crash", min_size=1, max_size=2)
    await crash.open()
    try:
        assert await _settings(crash._connection, 2) == {"off"}  # the server's (the database's) choice
    finally:
        await crash.close()


async def test_power_mode_keeps_a_stricter_server_setting(pg_url: str) -> None:
    """A server that waits for its standbys (remote_apply) is not weakened to a local flush."""
    from podium.storage.postgres import PostgresStore

    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = remote_apply')
    store = PostgresStore(pg_url, durability="power", max_size=2)
    await store.open()
    try:
        assert await _settings(store._connection, 2) == {"remote_apply"}
    finally:
        await store.close()


async def test_a_run_on_postgresql_in_power_mode_works_end_to_end(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_DURABILITY", "power")
    wf = Workflow("power_pg")

    @wf.step
    async def one() -> int:
        return 1

    async with Client(_with_sync_off(pg_url), workflows=[wf]) as c:
        assert c.store.durability == "power"  # type: ignore[attr-defined]
        assert await c.run(wf) == 1
