"""A raw SELECT (``query`` with ``sql``, which a model's tool call can fill in) read tables the
connector's ``tables`` allow-list leaves out. Against real SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import pytest

from podium import ConnectorError
from podium.connectors import open_connector


def _tables(url: str) -> None:
    import sqlalchemy as sa

    from podium.connectors.sql import _url

    engine = sa.create_engine(_url(url))
    meta = sa.MetaData()
    sa.Table("contacts", meta, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False), sa.Column("email", sa.String(200)))
    sa.Table("salaries", meta, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False), sa.Column("amount", sa.Integer))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO contacts (id, email) VALUES (1, 'a@example.com')"))
        conn.execute(sa.text("INSERT INTO salaries (id, amount) VALUES (1, 250000)"))
    engine.dispose()


async def test_a_raw_select_cannot_read_a_table_outside_the_allow_list(sql_url: str) -> None:
    """``tables=["contacts"]`` limits what the operations touch; the raw form (``sql``), which a
    model's tool call can fill in, read any table the database user can. Refused by default on a
    connector limited to tables; an admin opts in with ``raw_sql=True``."""
    pytest.importorskip("sqlalchemy")
    _tables(sql_url)
    db = open_connector("sql", url=sql_url, tables=["contacts"])
    try:
        for sql in ("SELECT amount FROM salaries", "SELECT c.id, (SELECT max(amount) FROM salaries) AS s FROM contacts c"):
            with pytest.raises(ConnectorError, match="limited to the tables contacts") as err:
                await db.call("query", {"sql": sql})
            assert not err.value.retryable and "raw_sql" in str(err.value)
        with pytest.raises(ConnectorError, match="not one this connector may use"):
            await db.call("query", {"table": "salaries"})
        assert await db.call("query", {"table": "contacts"}) == [{"id": 1, "email": "a@example.com"}]
    finally:
        await db.close()
    opted = open_connector("sql", url=sql_url, tables="contacts", raw_sql="true")  # as the registry gives it
    try:
        assert await opted.call("query", {"sql": "SELECT id FROM contacts"}) == [{"id": 1}]
    finally:
        await opted.close()
