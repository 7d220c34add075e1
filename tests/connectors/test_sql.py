"""The sql connector against real SQLite, PostgreSQL and MariaDB: every operation, change polling
with ties across pages, and values that never become SQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

pytest.importorskip("sqlalchemy")

import sqlalchemy as sa

from podium import ConnectorError
from podium.connectors import open_connector

T0 = dt.datetime(2024, 5, 1, 12, 0, 0)


def _make_table(url: str) -> None:
    from podium.connectors.sql import _url

    engine = sa.create_engine(_url(url))
    meta = sa.MetaData()
    sa.Table(
        "contacts",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("email", sa.String(200), nullable=False, unique=True),
        sa.Column("name", sa.String(200)),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    meta.create_all(engine)
    engine.dispose()


@pytest.fixture
async def db(sql_url: str) -> Any:
    _make_table(sql_url)
    conn = open_connector("sql", url=sql_url, tables=["contacts"], raw_sql=True)  # raw SELECTs tested too
    yield conn
    await conn.close()


def _row(i: int, minutes: int, **kw: Any) -> dict[str, Any]:
    return {"id": i, "email": f"c{i}@example.com", "name": f"C{i}", "updated_at": T0 + dt.timedelta(minutes=minutes), **kw}


async def test_insert_query_update(db: Any) -> None:
    assert [o.name for o in db.operations()] == ["query", "insert", "update", "upsert", "changes", "transact"]
    assert await db.call("insert", {"table": "contacts", "values": _row(1, 0)}) == {"inserted": 1, "key": [1]}
    await db.call("insert", {"table": "contacts", "rows": [_row(2, 1), _row(3, 2)]})
    rows = await db.call("query", {"table": "contacts", "where": {"id": 2}})
    assert [r["email"] for r in rows] == ["c2@example.com"]
    assert rows[0]["updated_at"] == T0 + dt.timedelta(minutes=1)
    out = await db.call("update", {"table": "contacts", "values": {"name": "Two"}, "where": {"id": 2}})
    assert out == {"updated": 1}
    names = await db.call("query", {"table": "contacts", "columns": ["id", "name"], "order_by": ["id"]})
    assert names == [{"id": 1, "name": "C1"}, {"id": 2, "name": "Two"}, {"id": 3, "name": "C3"}]
    # A parameterised SELECT: the value is bound, never pasted.
    found = await db.call(
        "query", {"sql": "SELECT id FROM contacts WHERE email = :e", "params": {"e": "c3@example.com"}}
    )
    assert found == [{"id": 3}]


async def test_values_never_become_sql(db: Any) -> None:
    evil = "x'); DROP TABLE contacts; --"
    await db.call("insert", {"table": "contacts", "values": _row(1, 0, name=evil)})
    assert (await db.call("query", {"table": "contacts", "where": {"name": evil}}))[0]["id"] == 1
    with pytest.raises(ConnectorError, match="no column") as err:
        await db.call("query", {"table": "contacts", "where": {"id = 1 OR 1": 1}})
    assert not err.value.retryable
    with pytest.raises(ConnectorError, match="single SELECT"):
        await db.call("query", {"sql": "DELETE FROM contacts"})
    with pytest.raises(ConnectorError, match="single SELECT"):
        await db.call("query", {"sql": "SELECT 1; DROP TABLE contacts"})
    with pytest.raises(ConnectorError, match="not one this connector may use"):
        await db.call("query", {"table": "secrets"})
    with pytest.raises(ConnectorError, match="every row"):
        await db.call("update", {"table": "contacts", "values": {"name": "all"}, "where": {}})
    assert len(await db.call("query", {"table": "contacts"})) == 1


async def test_upsert_inserts_then_updates_by_key(db: Any) -> None:
    row = _row(7, 0)
    await db.call("upsert", {"table": "contacts", "values": row, "key": ["id"]})
    await db.call("upsert", {"table": "contacts", "values": {**row, "name": "Seven"}, "key": ["id"]})
    await db.call("upsert", {"table": "contacts", "values": {**row, "name": "Seven"}, "key": ["id"]})
    rows = await db.call("query", {"table": "contacts"})
    assert [(r["id"], r["name"]) for r in rows] == [(7, "Seven")]


async def test_a_constraint_violation_is_final(db: Any) -> None:
    await db.call("insert", {"table": "contacts", "values": _row(1, 0)})
    with pytest.raises(ConnectorError, match="refused") as err:
        await db.call("insert", {"table": "contacts", "values": _row(1, 0)})
    assert not err.value.retryable and err.value.non_retryable
    assert "example.com" not in str(err.value)  # the statement's values are not echoed


async def test_changes_pages_through_ties_without_losing_rows(db: Any) -> None:
    # Five rows share one timestamp: a page boundary falls inside the tie.
    rows = [_row(i, 0 if i <= 5 else i) for i in range(1, 9)]
    await db.call("insert", {"table": "contacts", "rows": rows})
    seen: list[int] = []
    cursor = None
    for _ in range(10):
        page = await db.call("changes", {"table": "contacts", "cursor": cursor, "limit": 3})
        if not page["rows"]:
            break
        seen += [r["id"] for r in page["rows"]]
        cursor = page["cursor"]
    assert seen == list(range(1, 9))
    # Later changes come after the cursor (the cursor survives JSON: ISO text).
    await db.call("update", {"table": "contacts", "values": {"updated_at": T0 + dt.timedelta(hours=5)}, "where": {"id": 2}})
    page = await db.call("changes", {"table": "contacts", "cursor": cursor})
    assert [r["id"] for r in page["rows"]] == [2]
    assert isinstance(page["cursor"]["after"], str)


async def test_health_and_an_unreachable_database(db: Any, tmp_path: Any) -> None:
    assert (await db.health())["ok"]
    down = open_connector("sql", url="postgresql://postgres@127.0.0.1:1/none", timeout=2)
    down.retry = type(down.retry)(max_attempts=1)
    with pytest.raises(ConnectorError, match="did not answer") as err:
        await down.guarded_call("query", {"sql": "SELECT 1"})
    assert err.value.retryable
    assert not (await down.health())["ok"]
    await down.close()
