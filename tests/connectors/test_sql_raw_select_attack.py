"""``query`` is a read (``safe``): its raw form, which a model's tool call can fill in, runs one SELECT
in a transaction that is rolled back. Rolling back did not undo everything a SELECT can do: on
MariaDB ``SELECT ... INTO OUTFILE`` wrote a file on the database server, and on PostgreSQL
``SELECT setval(...)`` moved a sequence (sequences ignore rollbacks). Against real databases."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from podium import ConnectorError
from podium.connectors import open_connector


def _table(url: str) -> None:
    import sqlalchemy as sa

    from podium.connectors.sql import _url

    engine = sa.create_engine(_url(url))
    meta = sa.MetaData()
    sa.Table("notes", meta, sa.Column("id", sa.Integer, primary_key=True, autoincrement=True), sa.Column("text", sa.String(200)))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO notes (text) VALUES ('a'), ('b')"))
    engine.dispose()


async def _refused(db: Any, *sqls: str) -> list[str]:
    """Each raw SELECT is refused for its INTO, not retryable; returns the messages."""
    messages = []
    for sql in sqls:
        with pytest.raises(ConnectorError, match="INTO") as err:
            await db.call("query", {"sql": sql})
        assert not err.value.retryable
        messages.append(str(err.value))
    return messages


async def test_a_raw_select_writes_nothing(sql_url: str) -> None:
    pytest.importorskip("sqlalchemy")
    _table(sql_url)
    db = open_connector("sql", url=sql_url)
    probe = f"/tmp/podium_outfile_{uuid.uuid4().hex}"
    try:
        for message in await _refused(db, f"SELECT text FROM notes INTO OUTFILE '{probe}'",
                                      f"SELECT text FROM notes INTO DUMPFILE '{probe}'",
                                      "SELECT text INTO copied FROM notes", "select text from notes into @v"):
            assert "params" in message
        assert not os.path.exists(probe)
        if sql_url.startswith("postgres"):
            seq = "SELECT setval(pg_get_serial_sequence('notes', 'id'), 5000)"
            with pytest.raises(ConnectorError, match="read-only"):
                await db.call("query", {"sql": seq})
            await db.call("insert", {"table": "notes", "values": {"text": "c"}})
            assert [r["id"] for r in await db.call("query", {"table": "notes", "where": {"text": "c"}})] == [3]
        # an ordinary SELECT still works, values in params
        assert await db.call("query", {"sql": "SELECT text FROM notes WHERE text = :t", "params": {"t": "b"}}) == [{"text": "b"}]
    finally:
        await db.close()
        if os.path.exists(probe):
            os.remove(probe)


async def test_into_hidden_in_an_executable_comment_is_refused(sql_url: str) -> None:
    """Attack (review): MySQL and MariaDB run the text of a versioned comment, ``/*!50000INTO
    OUTFILE ...*/``, and the version number runs straight into the keyword, so ``\\binto\\b`` saw
    no word boundary: the SELECT wrote its rows to a file on the database server (on MariaDB),
    through a read the model may call freely. Refused on every database."""
    pytest.importorskip("sqlalchemy")
    _table(sql_url)
    db = open_connector("sql", url=sql_url)
    probe = f"/tmp/podium_outfile_{uuid.uuid4().hex}"
    try:
        await _refused(db, f"SELECT text FROM notes /*!50000INTO OUTFILE '{probe}'*/",
                       f"SELECT text FROM notes /*M!100000INTO OUTFILE '{probe}'*/",
                       "SELECT text FROM notes /*!50000into @v*/", "SELECT text FROM notes /*!50000INTO*/ @v")
        assert not os.path.exists(probe)
        # a word that holds 'into' is no keyword: still read
        assert await db.call("query", {"sql": "SELECT text AS pointinto FROM notes WHERE text = :t", "params": {"t": "a"}}) == [{"pointinto": "a"}]
    finally:
        await db.close()
        if os.path.exists(probe):
            os.remove(probe)


async def test_a_raw_select_cannot_move_a_mariadb_sequence_or_keep_a_lock(request: pytest.FixtureRequest) -> None:
    """Attack (review): PostgreSQL runs a raw SELECT read-only, MariaDB did not, and its sequences
    ignore the rollback: ``SELECT NEXTVAL(seq)`` through ``query`` (a read a model may call) moved
    the sequence for good; ``GET_LOCK`` left a named lock held by the pooled connection. Against the
    real MariaDB, in a database the test creates and drops."""
    pytest.importorskip("sqlalchemy")
    import pymysql

    from .conftest import _mariadb

    url = _mariadb(request)
    name = url.rsplit("/", 1)[1]
    admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=name, autocommit=True)
    with admin.cursor() as cur:
        cur.execute("CREATE SEQUENCE ticket_no")
        cur.execute("CREATE FUNCTION bump() RETURNS BIGINT RETURN NEXTVAL(ticket_no)")  # no name to spot
    lock = f"podium-{name}"
    db = open_connector("sql", url=url)
    try:
        for sql in ("SELECT NEXTVAL(ticket_no) AS n", "select nextval(ticket_no)", "SELECT SETVAL(ticket_no, 5000)",
                    "SELECT NEXT VALUE FOR ticket_no", "SELECT next/**/value/**/for ticket_no",
                    "SELECT /*!100000 nextval(ticket_no)*/ AS n", f"SELECT GET_LOCK('{lock}', 0)",
                    "SELECT bump()"):
            with pytest.raises(ConnectorError) as err:
                await db.call("query", {"sql": sql})
            assert not err.value.retryable and "read" in str(err.value).lower() and "Traceback" not in str(err.value), sql
        assert await db.call("query", {"sql": "SELECT 1 AS one"}) == [{"one": 1}]  # reads still work
        with admin.cursor() as cur:
            cur.execute(f"SELECT IS_USED_LOCK('{lock}')")
            assert cur.fetchone() == (None,), "a lock taken by a read is still held by the pool's connection"
            cur.execute("SELECT NEXTVAL(ticket_no)")
            assert cur.fetchone() == (1,), "a read moved the sequence"
    finally:
        await db.close()
        admin.close()


async def test_functions_that_outlive_the_rollback_are_refused_on_every_database(sql_url: str) -> None:
    """The same names are refused before the database sees them, on every database: PostgreSQL's
    session advisory locks stay with the pooled connection after the rollback, too."""
    pytest.importorskip("sqlalchemy")
    db = open_connector("sql", url=sql_url)
    try:
        for sql in ("SELECT pg_advisory_lock(42)", "SELECT pg_try_advisory_lock(1, 2)", "SELECT setval('s', 1)",
                    "SELECT get_lock('x', 1)", "SELECT load_file('/etc/hostname')"):
            with pytest.raises(ConnectorError, match="a rollback does not undo"):
                await db.call("query", {"sql": sql})
        assert await db.call("query", {"sql": "SELECT 1 AS next_value"}) == [{"next_value": 1}]
    finally:
        await db.close()


async def test_attack_a_postgres_lock_hidden_behind_an_escaped_name_or_dynamic_sql_is_refused(pg_url: str) -> None:
    """Attack (review of the day's diff): the names are matched in the text, but PostgreSQL also
    reads a name written with Unicode escapes (``U&"pg_\\0061dvisory_lock"``) and runs SQL built from
    strings (``query_to_xml('select pg_adv' || 'isory_lock(7)', ...)``). Either took a session
    advisory lock through ``query`` that the pooled connection kept after the read; so did a stored
    function that takes one (now released after every raw SELECT)."""
    pytest.importorskip("sqlalchemy")
    import psycopg

    db = open_connector("sql", url=pg_url)
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    try:
        for sql in ('SELECT U&"pg_\\0061dvisory_lock"(4242)',
                    "SELECT u&\"pg_!0061dvisory_lock\" UESCAPE '!' (4243)",
                    "SELECT query_to_xml('select pg_adv' || 'isory_lock(4244)', true, true, '')",
                    "SELECT ts_stat('select to_tsvector(pg_adv' || 'isory_lock(4245)::text)')"):  # fmt: skip
            with pytest.raises(ConnectorError) as err:
                await db.call("query", {"sql": sql})
            assert not err.value.retryable and str(err.value).startswith("sql: `sql` "), sql
        assert await db.call("query", {"sql": "SELECT 'u & me' AS a, 1 AS query_to_xml_count"}) == [{"a": "u & me", "query_to_xml_count": 1}]
        with psycopg.connect(plain, autocommit=True) as admin:  # a function with no name to spot
            admin.execute("CREATE FUNCTION grab() RETURNS int LANGUAGE sql AS 'SELECT 1 FROM (SELECT pg_advisory_lock(4246)) x'")
        assert await db.call("query", {"sql": "SELECT grab() AS g"}) == [{"g": 1}]
        with psycopg.connect(plain, autocommit=True) as admin:
            held = admin.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()
            assert held == (0,), "a read left an advisory lock held by the pool's connection"
    finally:
        await db.close()


async def test_attack_a_raw_select_cannot_read_the_postgres_servers_files(pg_url: str) -> None:
    """Attack (eighth session's review): MariaDB's ``LOAD_FILE`` was refused, PostgreSQL's file
    functions were not. With a privileged database user (a superuser, or ``pg_read_server_files``),
    ``SELECT pg_read_file('/etc/hostname')`` read any file the database server may read, and
    ``pg_ls_dir`` listed its folders, through a read that a model's tool call can fill in."""
    pytest.importorskip("sqlalchemy")
    db = open_connector("sql", url=pg_url)
    try:
        for sql in ("SELECT pg_read_file('/etc/hostname') AS f", "SELECT pg_read_binary_file('/etc/hostname') AS f",
                    "SELECT * FROM pg_ls_dir('.') AS f", "SELECT (pg_stat_file('/etc/hostname')).size AS f",
                    "SELECT PG_READ_FILE('postgresql.conf', 0, 200) AS f"):  # fmt: skip
            with pytest.raises(ConnectorError, match="server's files|a rollback does not undo") as err:
                await db.call("query", {"sql": sql})
            assert not err.value.retryable, sql
        assert await db.call("query", {"sql": "SELECT 1 AS pg_read_file_count"}) == [{"pg_read_file_count": 1}]
    finally:
        await db.close()


async def test_attack_a_raw_select_cannot_change_the_postgres_servers_state_or_read_its_config(pg_url: str) -> None:
    """Attack (review of the eighth session's fixes): the names refused were a list, and PostgreSQL has
    more functions a privileged user's SELECT may call, in a READ ONLY transaction, whose effect the
    rollback does not undo: ``pg_create_physical_replication_slot`` made a slot that outlived the read
    and kept the server's WAL from being recycled until its disk filled; ``pg_drop_replication_slot``
    dropped a replica's; ``pg_switch_wal``, ``pg_stat_reset``, ``pg_logical_emit_message`` and
    ``pg_create_restore_point`` acted on the server. The views ``pg_hba_file_rules`` and
    ``pg_ident_file_mappings`` read the server's pg_hba.conf and pg_ident.conf."""
    pytest.importorskip("sqlalchemy")
    import psycopg

    db = open_connector("sql", url=pg_url)
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    slot = f"podium_probe_{uuid.uuid4().hex[:8]}"
    try:
        for sql in (f"SELECT pg_create_physical_replication_slot('{slot}') AS s",
                    f'SELECT "pg_create_logical_replication_slot"(\'{slot}\', \'pgoutput\') AS s',
                    "SELECT pg_drop_replication_slot('replica_1') AS s",
                    "SELECT pg_catalog.pg_switch_wal() AS s", "SELECT pg_stat_reset() AS s",
                    "SELECT pg_stat_reset_shared('bgwriter') AS s",
                    "SELECT pg_logical_emit_message(false, 'p', 'x') AS s",
                    "SELECT pg_create_restore_point('p') AS s",
                    "SELECT pg_replication_origin_create('p') AS s",
                    "SELECT pg_promote() AS s", "SELECT pg_wal_replay_pause() AS s",
                    "SELECT pg_backup_start('p') AS s",
                    "SELECT * FROM pg_hba_file_rules", "SELECT * FROM pg_catalog.pg_ident_file_mappings",
                    "SELECT * FROM pg_logdir_ls() AS l"):  # fmt: skip
            with pytest.raises(ConnectorError, match="a rollback does not undo|server's files") as err:
                await db.call("query", {"sql": sql})
            assert not err.value.retryable, sql
        with psycopg.connect(plain, autocommit=True) as admin:
            made = admin.execute("SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
            assert made == (0,), "a read made a replication slot"
        # honest reads of the server's state still work
        rows = await db.call("query", {"sql": "SELECT pg_is_in_recovery() AS r, pg_typeof(1)::text AS t, 1 AS pg_promote_count"})
        assert rows == [{"r": False, "t": "integer", "pg_promote_count": 1}]
        watched = ("SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_stat_replication) "
                   "+ (SELECT count(*) FROM pg_replication_origin_status) >= 0 AS ok")  # fmt: skip
        assert await db.call("query", {"sql": watched}) == [{"ok": True}]
    finally:
        await db.close()
        with psycopg.connect(plain, autocommit=True) as admin:
            if admin.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone():
                admin.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
