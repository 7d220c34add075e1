"""Attack (eighth session's review): a value of the wrong type matched every row.

A workflow file writes `where: {email: "{{ input.email }}"}`: the value is data, the column is the
file's. But a template of one expression keeps the input's type, and MariaDB/MySQL compare a text
column with a number as numbers: `email = 0` is true for every address not starting with a digit.
A customer's event with `{"email": 0}` read every customer's row, and an `update` with that
`where` changed them all. (`id = 'abc'` the other way: the text is read as 0.) Now a value for a text
column must be text, a number column's a number (or its digits), and a list or mapping is refused,
before any statement is sent; on every database alike."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from podium.connectors import open_connector
from podium.errors import ConnectorError


@pytest.fixture
async def crm(sql_url: str) -> Any:
    engine = sa.create_engine(sql_url.replace("mariadb://", "mysql+pymysql://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR(200), plan VARCHAR(20))"))
        conn.execute(sa.text("INSERT INTO customers VALUES (1, 'ana@example.com', 'free'), (2, 'bo@example.com', 'free')"))
    engine.dispose()
    conn = open_connector("sql", url=sql_url, tables="customers")
    yield conn
    await conn.close()


@pytest.mark.parametrize("value", [0, 0.0, False, True, [0], {"a": 1}])
async def test_attack_a_number_for_a_text_column_does_not_match_every_row(crm: Any, value: Any) -> None:
    with pytest.raises(ConnectorError, match="email"):
        await crm.call("query", {"table": "customers", "where": {"email": value}})
    with pytest.raises(ConnectorError, match="email"):
        await crm.call("update", {"table": "customers", "where": {"email": value}, "values": {"plan": "gold"}})
    rows = await crm.call("query", {"table": "customers", "order_by": ["id"]})
    assert [r["plan"] for r in rows] == ["free", "free"]


@pytest.mark.parametrize("value", ["abc", "1abc", "", True])
async def test_attack_text_for_a_number_column_is_refused(crm: Any, value: Any) -> None:
    with pytest.raises(ConnectorError, match="id"):
        await crm.call("update", {"table": "customers", "where": {"id": value}, "values": {"plan": "gold"}})
    rows = await crm.call("query", {"table": "customers", "order_by": ["id"]})
    assert [r["plan"] for r in rows] == ["free", "free"]


async def test_values_of_the_right_kind_still_match(crm: Any) -> None:
    assert await crm.call("query", {"table": "customers", "where": {"email": "bo@example.com"}, "columns": ["id"]}) == [{"id": 2}]
    assert await crm.call("query", {"table": "customers", "where": {"id": "2"}, "columns": ["email"]}) == [
        {"email": "bo@example.com"}
    ]  # digits for a number column, as JSON from a form often sends them
    assert await crm.call("query", {"table": "customers", "where": {"id": 2.0}, "columns": ["id"]}) == [{"id": 2}]
    await crm.call("update", {"table": "customers", "where": {"id": 1}, "values": {"plan": "gold"}})
    rows = await crm.call("query", {"table": "customers", "order_by": ["id"]})
    assert [r["plan"] for r in rows] == ["gold", "free"]


async def test_a_row_read_back_selects_itself_by_its_own_values(sql_url: str) -> None:
    """Review of the eighth session's fixes: the kind check refused values the connector itself
    returns. A NUMERIC column reads back as a ``Decimal``, and ``where: {amount: row["amount"]}``
    was refused ("holds a number, and the value given is Decimal"); on MariaDB/MySQL a BOOLEAN
    column is a TINYINT(1), and ``where: {active: true}`` was refused as a boolean for an integer."""
    engine = sa.create_engine(sql_url.replace("mariadb://", "mysql+pymysql://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount NUMERIC(10, 2), active BOOLEAN)"))
        conn.execute(sa.text("INSERT INTO invoices VALUES (1, 12.50, true), (2, 7.25, false)"))
    engine.dispose()
    db = open_connector("sql", url=sql_url, tables="invoices")
    try:
        (row,) = await db.call("query", {"table": "invoices", "where": {"id": 1}})
        assert await db.call("query", {"table": "invoices", "where": {"amount": row["amount"]}, "columns": ["id"]}) == [{"id": 1}]
        assert await db.call("query", {"table": "invoices", "where": {"id": row["id"], "active": True}, "columns": ["id"]}) == [{"id": 1}]
        assert await db.call("query", {"table": "invoices", "where": {"active": False}, "columns": ["id"]}) == [{"id": 2}]
        for bad in ("1abc", [1], "NaN"):
            with pytest.raises(ConnectorError, match="amount"):
                await db.call("query", {"table": "invoices", "where": {"amount": bad}})
    finally:
        await db.close()
