"""SQLite schema 14: the audit log's partial index of governing entries written with OR (an insert
no longer builds a table of the actions to test its entry), and one trigger keeping the approvals
inbox as a run's status changes. A store still at 13 (opened unmigrated) reads through its index."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from podium import open_store
from podium.records import GOVERNING_ACTIONS
from podium.storage._sqlite_schema import GOVERNING_OR


def test_the_or_condition_names_every_governing_action_and_no_other() -> None:
    named = sorted(part.strip(" ()").removeprefix("action = ").strip("'") for part in GOVERNING_OR.split(" OR "))
    assert named == sorted(GOVERNING_ACTIONS)


def _plans(store: Any, calls: list[str]) -> list[str]:
    return [" ".join(str(row) for row in store.db.execute("EXPLAIN QUERY PLAN " + q)) for q in calls]


async def test_a_store_at_schema_13_reads_the_governing_entries_through_its_own_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/p.db"
    store: Any = open_store(url)
    await store.open()
    await store.close()
    db = sqlite3.connect(tmp_path / "p.db", isolation_level=None)
    db.execute("DROP INDEX audit_governing")  # as schema 11 to 13 wrote it
    db.execute(
        "CREATE INDEX audit_governing ON audit (target, seq) "
        "WHERE action IN ('killswitch.set', 'killswitch.clear', 'policy.set')"
    )
    db.execute("DELETE FROM schema_migrations WHERE version >= 14")
    db.close()
    old: Any = open_store(url)
    old.auto_migrate = False  # as `podium db upgrade` opens it, before it migrates
    await old.open()
    try:
        assert await old.schema_version() == 13
        queries: list[str] = []
        old.db.set_trace_callback(queries.append)
        assert await old.governing_heads() == {}
        assert await old.governing_entries() == []
        old.db.set_trace_callback(None)
        assert len(queries) == 2 and all("audit_governing" in p for p in _plans(old, queries)), queries
    finally:
        await old.close()
    new: Any = open_store(url)  # migrated to 14 now: the OR form, read through the new index
    await new.open()
    try:
        assert await new.schema_version() >= 14
        queries = []
        new.db.set_trace_callback(queries.append)
        await new.governing_heads()
        new.db.set_trace_callback(None)
        assert " OR " in queries[0] and "audit_governing" in _plans(new, queries)[0]
        triggers = {r[0] for r in new.db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'runs'")}
        assert triggers == {"approvals_kept"}
    finally:
        await new.close()
