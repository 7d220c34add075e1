"""An attacker's and correctness review of the fourteenth session's changes (docs/status.md,
"Attacker's review of the fourteenth session's changes").

Each test is an attack or a property the changes could have broken: the SQLite group write (a
group's events in one statement, its audit entries in another), schema 14 (one trigger keeping the
approvals inbox, the governing index written with OR), the executor's shared empty defaults,
``cancel_requests``, a fresh store's first open, and the one JSON encoder of the audit entries.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from podium import Client, StoreError

# -- a fresh store's first open (storage/_identity.py) ------------------------------------------------


def _pg(url: str, *queries: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for q in queries:
            conn.execute(q.encode())


def _planted(url: str, rows: dict[tuple[str, str], str]) -> None:
    """A database with no store in it but a ``schema_migrations`` table, empty, whose trigger writes
    ``rows`` into the key-value table once the migrations of a first open have made it (an insert
    of a PL/pgSQL function is planned when it runs, not when the trigger is made)."""
    body = " ".join(
        "INSERT INTO kv (ns, key, value) VALUES ({}, {}, {}) ON CONFLICT (ns, key) DO UPDATE SET value = "
        "excluded.value;".format(*(_lit(v) for v in (ns, key, value)))
        for (ns, key), value in rows.items()
    )
    _pg(
        url,
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
        "applied_at DOUBLE PRECISION NOT NULL DEFAULT extract(epoch FROM now()))",
        f"CREATE FUNCTION planted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.version = 3 THEN {body} "
        "END IF; RETURN NEW; END $$",
        "CREATE TRIGGER planted AFTER INSERT ON schema_migrations FOR EACH ROW EXECUTE FUNCTION planted()",
    )


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def test_attack_a_planted_schema_cannot_give_a_new_store_the_id_of_another_store(pg_database: Any) -> None:
    """A database prepared before production's store is made in it (one whose user may create
    tables there), holding a trigger that writes staging's id (and staging's tokens) into the
    key-value table as the first open makes it: the open made the schema (migration 1), so it
    counted as fresh and skipped the look-up of the ids this machine pinned for other stores
    (d6faba3). Staging's admin token then held in production."""
    staging, prod = pg_database(), pg_database()
    async with Client(staging, recover=False) as c:
        await c.create_user("root", ["admin"])
        token = await c.create_token("root")
    import psycopg

    with psycopg.connect(staging, autocommit=True) as conn:
        got = conn.execute("SELECT ns, key, value FROM kv").fetchall()
    _planted(prod, {(ns, key): value for ns, key, value in got})
    with pytest.raises(StoreError, match="is the id of store"):
        async with Client(prod, token=token, recover=False) as c:
            await c.create_user("mallory", ["admin"])


class _Between(list):  # type: ignore[type-arg]
    """The migrations, with ``act`` run after the one that makes the key-value table has committed."""

    def __init__(self, items: list[tuple[int, str]], act: Any) -> None:
        super().__init__(items)
        self.act = act

    def __iter__(self) -> Any:
        for version, sql in list.__iter__(self):
            if version == 4:
                self.act()
            yield version, sql


async def test_attack_a_writer_between_the_migrations_of_a_first_open_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process writing the new database while the first open migrates it (each migration is
    a transaction of its own) sets staging's id in the row the open then reads."""
    from podium.storage import sqlite as sqlite_store

    staging = f"sqlite:///{tmp_path}/staging.db"
    async with Client(staging, recover=False):
        pass
    db = sqlite3.connect(tmp_path / "staging.db")
    stolen = db.execute("SELECT value FROM kv WHERE ns = 'podium.store'").fetchone()[0]
    db.close()

    def overwrite() -> None:
        other = sqlite3.connect(tmp_path / "prod.db")
        other.execute("UPDATE kv SET value = ? WHERE ns = 'podium.store'", (stolen,))
        other.commit()
        other.close()

    monkeypatch.setattr(sqlite_store, "MIGRATIONS", _Between(sqlite_store.MIGRATIONS, overwrite))
    with pytest.raises(StoreError, match="is the id of store"):
        async with Client(f"sqlite:///{tmp_path}/prod.db", recover=False):
            pass


async def test_a_new_store_reads_no_pin_of_another_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The look-up d6faba3 saved stays saved for a store whose id its open drew (an empty file too)."""
    from podium._auditkey import AuditKeys

    async with Client(f"sqlite:///{tmp_path}/a.db", recover=False):
        pass
    looked: list[str] = []
    real = AuditKeys.pinned_elsewhere
    monkeypatch.setattr(AuditKeys, "pinned_elsewhere", lambda self, sid: looked.append(sid) or real(self, sid))
    (tmp_path / "b.db").touch()
    async with Client(f"sqlite:///{tmp_path}/b.db", recover=False) as c:
        await c.create_user("root", ["admin"])
        assert await c.create_token("root")
    assert looked == []
