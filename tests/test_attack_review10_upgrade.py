"""Upgrading a store the previous release left (schema 10 on SQLite, 7 on PostgreSQL), with users,
a kill switch and policies in it (tenth session review; docs/status.md, "Review of the tenth
session's changes (tenth session)")."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from store_attacker import pay_workflow

from podium import Client, KillSwitchActive, Policy

ROOT = Path(__file__).resolve().parent.parent


async def _previous_release_store(url: str) -> str:
    """A store as the previous release left it: users, a token, a switch, a policy; the index of
    governing entries (this release's last migration) not there. Returns the admin's token."""
    async with Client(url) as c:
        await c.governance.create_user("root", ["admin"])
        token = str(await c.governance.create_token("root"))
    async with Client(url, token=token) as c:
        await c.set_switch("workflow", "pay", reason="incident 42")
        await c.set_policy("pay", Policy(max_run_tokens=10))
    if url.startswith("sqlite:///"):
        db = sqlite3.connect(url[len("sqlite:///") :])
        db.execute("DROP INDEX audit_governing")
        db.execute("DELETE FROM schema_migrations WHERE version >= 11")  # and this release's later ones
        db.commit()
        db.close()
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP INDEX audit_governing")
            conn.execute("DELETE FROM schema_migrations WHERE version >= 8")  # and this release's later ones
    return token


def _podium(*args: str, db: str, token: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "PODIUM_DB": db, "PODIUM_TOKEN": token}
    return subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("store_url", ["sqlite", "postgres"], indirect=True)
async def test_db_upgrade_of_a_governed_store_the_previous_release_left(store_url: str) -> None:
    """``podium db upgrade`` checks its caller's token on the store as it is, unmigrated; the check
    read the kill switches through the new index (SQLite's INDEXED BY), which the store it had to
    upgrade did not have yet: it failed with 'no such index' on every governed SQLite store."""
    token = await _previous_release_store(store_url)
    done = _podium("db", "upgrade", db=store_url, token=token)
    assert done.returncode == 0, done.stderr
    assert "applied" in done.stdout, done.stdout
    wf = pay_workflow()
    async with Client(store_url, token=token, workflows=[wf]) as c:
        with pytest.raises(KillSwitchActive, match="incident 42"):
            await c.start(wf, 1)
        assert c.policy_for("pay") == Policy(max_run_tokens=10)
        assert set(await c.store.governing_heads()) == {"workflow:pay"}


async def test_sqlite_reads_the_governing_entries_through_their_index(tmp_path: Path) -> None:
    """Without INDEXED BY (which a store not migrated yet cannot answer), SQLite still picks the
    partial index for both reads: a refresh does not scan the whole audit log."""
    from podium import open_store

    store: Any = open_store(f"sqlite:///{tmp_path}/p.db")
    await store.open()
    try:
        queries: list[str] = []
        store.db.set_trace_callback(queries.append)
        await store.governing_heads()
        await store.governing_entries()
        store.db.set_trace_callback(None)
        assert len(queries) == 2, queries
        for query in queries:
            plan = " ".join(str(row) for row in store.db.execute("EXPLAIN QUERY PLAN " + query))
            assert "audit_governing" in plan, (query, plan)
    finally:
        await store.close()
