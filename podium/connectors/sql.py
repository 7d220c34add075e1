"""SQL databases through SQLAlchemy Core: PostgreSQL, MariaDB/MySQL, SQLite (``pip install 'podium[connectors]'``).

Operations (every value is a bound parameter; table and column names are checked against the
reflected schema, never pasted into SQL):

* ``query``: rows of ``table`` matching ``where`` (equality), or a parameterised ``SELECT`` given as
  ``sql`` with ``:name`` placeholders and ``params`` (a single SELECT or WITH statement without
  INTO and without functions whose effect outlives a rollback (NEXTVAL, SETVAL, GET_LOCK...), run in
  a transaction that is rolled back, and read-only on PostgreSQL and MariaDB/MySQL);
* ``insert``: one row (``values``) or many (``rows``);
* ``update``: set ``values`` on the rows matching ``where`` (an empty ``where`` is refused);
* ``upsert``: insert ``values``, or update the row with the same ``key`` columns;
* ``changes``: rows whose ``column`` (default ``updated_at``) is past ``cursor``, oldest first, and
  the cursor to pass next time (keyset on the column and the primary key, so ties are never lost);
* ``transact``: several ``writes`` (insert, update, upsert) and the ``messages`` they imply, recorded
  in the transactional outbox (:mod:`podium.connectors.outbox`), in ONE transaction, applied once
  per idempotency key (a repeated call returns the first result and writes nothing).

Delivery: ``query`` and ``changes`` are reads; ``upsert`` and ``update`` with absolute values are
idempotent; ``insert`` is at-least-once when a run crashes between the commit and its log entry;
``transact`` is effectively-once (its key is recorded in the same transaction as its writes).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import decimal
import math
import re
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from ..errors import ConfigError, ConnectorError
from ._base import Connector, Operation
from .outbox import NOT_APPLIED, RESERVED_PREFIX, Outbox, OutboxMessage

_TABLE = {"type": "string", "description": "Table name."}
_ROW = {"type": "object", "description": "Column -> value."}
_SELECT = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)
# INTO anywhere, literals and comments included: MySQL and MariaDB run /*!50000INTO ...*/, where a
# digit touches the keyword (no \b); only a letter, '_' or '$' next to it makes it part of a name.
_INTO = re.compile(r"(?<![a-z_$])into(?![a-z0-9_$])", re.IGNORECASE)
# Functions whose effect a rollback does not undo: sequences (MariaDB's ignore rollbacks and its
# NEXT VALUE FOR too), named and advisory locks (held by the pooled connection after the read),
# server control and the server's files. Matched anywhere, as INTO is (executable comments).
_OUTLIVES_ROLLBACK = re.compile(
    r"(?<![a-z_$])(nextval|setval|get_lock|release_lock|release_all_locks|pg_(?:try_)?advisory_\w+|"
    r"pg_terminate_backend|pg_cancel_backend|pg_reload_conf|pg_rotate_logfile|lo_import|lo_export|load_file"
    # the server's files, read (PostgreSQL's as MariaDB's LOAD_FILE): a superuser or pg_read_server_files
    r"|pg_read_file|pg_read_binary_file|pg_ls_\w+|pg_stat_file|pg_file_\w+|pg_hba_file_rules|pg_ident_file_mappings|pg_logdir_ls"
    # ...and the server's state a superuser or a replication role changes: replication slots (a slot
    # made by a read keeps the WAL until the disk fills) and origins, WAL, backups, recovery, statistics
    r"|pg_(?:create|drop|copy)_\w*replication_slot|pg_replication_slot_advance"
    r"|pg_replication_origin_(?:create|drop|advance|session_\w+|xact_\w+)"  # not the views that list them
    r"|pg_logical_\w+|pg_switch_\w+|pg_create_restore_point|pg_promote"
    r"|pg_(?:start|stop)_backup|pg_backup_\w+|pg_(?:wal|xlog)_replay_\w+|pg_stat_reset\w*|pg_stat_statements_reset"
    r"|pg_log_backend_memory_contexts"
    r"|next\W+value\W+for"
    # ...and PostgreSQL functions that run SQL given as text, which can be built from pieces
    # ('pg_adv' || 'isory_lock(1)') that no name above matches
    r"|query_to_xml|query_to_xml_and_xmlschema|query_to_xmlschema|ts_stat|ts_rewrite|dblink(?:_\w+)?)(?![a-z0-9_$])",
    re.IGNORECASE,
)
# PostgreSQL reads U&"..." names and U&'...' strings with Unicode escapes: U&"pg_\0061dvisory_lock"
# is pg_advisory_lock, which no name matched in the text finds.
_ESCAPED = re.compile(r"(?<![a-z0-9_$])u&\s*[\"']", re.IGNORECASE)


def _url(url: str) -> str:
    """The SQLAlchemy URL, with the drivers Podium installs (psycopg 3, PyMySQL)."""
    for plain, driver in (
        ("postgresql://", "postgresql+psycopg://"),
        ("postgres://", "postgresql+psycopg://"),
        ("mysql://", "mysql+pymysql://"),
        ("mariadb://", "mariadb+pymysql://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


class SqlConnector(Connector):
    """A SQL database. ``tables`` limits which tables the operations may touch (default: any); on a
    connector limited so, a raw ``sql`` SELECT is refused unless ``raw_sql=True``."""

    kind = "sql"

    def __init__(
        self,
        url: str,
        *,
        tables: list[str] | str | None = None,
        updated_column: str = "updated_at",
        pool_size: int = 5,
        timeout: float = 30.0,
        raw_sql: bool | str = False,
    ) -> None:
        if not isinstance(url, str) or "://" not in url:
            raise ConfigError(f"a sql connector needs a database URL, got {url!r}")
        self.url = _url(url)
        if isinstance(tables, str):  # from a registered capability: "orders,customers" (or '["orders"]')
            tables = [t.strip().strip("'\"") for t in tables.strip().strip("[]").split(",") if t.strip().strip("'\"")]
        self.tables = list(tables) if tables is not None else None
        self.raw_sql = raw_sql.strip().lower() in ("1", "true", "yes", "on") if isinstance(raw_sql, str) else bool(raw_sql)
        """With ``tables``: whether ``query`` still takes a raw ``sql`` SELECT (which may read any table
        the database user can: allow it only when that user itself is limited to ``tables``)."""
        self.updated_column = updated_column
        self.timeout = timeout
        self._pool_size = pool_size
        self._engine: sa.Engine | None = None
        self._meta = sa.MetaData()
        self._lock = asyncio.Lock()
        self.outbox = Outbox()
        """The transactional outbox in this database (created on the first ``transact``)."""
        self._outbox_ready = False

    def operations(self) -> list[Operation]:
        table = {**_TABLE, "enum": self.tables} if self.tables else _TABLE
        where = {"type": "object", "description": "Column -> value; rows must match all (equality)."}
        raw: dict[str, Any] = {}  # a raw SELECT is offered only where it is allowed
        if self.tables is None or self.raw_sql:
            raw = {"sql": {"type": "string", "description": "SELECT ... WHERE x = :x"}, "params": {"type": "object"}}
        return [
            Operation(
                name="query",
                description="Read rows of a table matching `where`, or run a parameterised SELECT (`sql`, `params`).",
                input={
                    "type": "object",
                    "properties": {
                        "table": table,
                        "where": where,
                        "columns": {"type": "array", "items": {"type": "string"}},
                        "order_by": {"type": "array", "items": {"type": "string"}},
                        **raw,
                        "limit": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000},
                    },
                },
                output={"type": "array", "items": {"type": "object"}},
                safe=True,
            ),
            Operation(
                name="insert",
                description="Insert one row (`values`) or several (`rows`).",
                input={
                    "type": "object",
                    "properties": {"table": table, "values": _ROW, "rows": {"type": "array", "items": _ROW}},
                    "required": ["table"],
                },
                output={"type": "object"},
            ),
            Operation(
                name="update",
                description="Set `values` on the rows matching `where`.",
                input={
                    "type": "object",
                    "properties": {"table": table, "values": _ROW, "where": where},
                    "required": ["table", "values", "where"],
                },
                output={"type": "object"},
            ),
            Operation(
                name="upsert",
                description="Insert `values`, or update the row whose `key` columns match.",
                input={
                    "type": "object",
                    "properties": {
                        "table": table,
                        "values": _ROW,
                        "key": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    },
                    "required": ["table", "values", "key"],
                },
                output={"type": "object"},
            ),
            Operation(
                name="changes",
                description="Rows changed after `cursor` (oldest first) and the next cursor.",
                input={
                    "type": "object",
                    "properties": {
                        "table": table,
                        "column": {"type": "string", "default": self.updated_column},
                        "cursor": {"description": "The cursor a previous call returned (null: from the start)."},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100},
                    },
                    "required": ["table"],
                },
                output={"type": "object", "properties": {"rows": {"type": "array"}, "cursor": {}}},
                safe=True,
            ),
            Operation(
                name="transact",
                description="Apply `writes` and record `messages` in the outbox in one transaction (once per key).",
                input={
                    "type": "object",
                    "properties": {
                        "writes": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "op": {"enum": ["insert", "update", "upsert"]},
                                    "table": table,
                                    "values": _ROW,
                                    "rows": {"type": "array", "items": _ROW},
                                    "where": where,
                                    "key": {"type": "array", "items": {"type": "string"}},
                                },
                                "required": ["op", "table"],
                            },
                        },
                        "messages": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "target": {"type": "string", "description": "The connector that delivers it."},
                                    "operation": {"type": "string"},
                                    "arguments": {"type": "object"},
                                    "key": {"type": "string", "description": "Its idempotency key (default: derived)."},
                                },
                                "required": ["target", "operation"],
                            },
                        },
                    },
                },
                output={"type": "object", "properties": {"results": {"type": "array"}, "messages": {"type": "array"}}},
            ),
        ]

    # -- life cycle ------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._engine is None:
            args = {} if self.url.startswith("sqlite") else {"pool_size": self._pool_size, "pool_timeout": self.timeout}
            self._engine = sa.create_engine(self.url, pool_pre_ping=True, **args)

    async def close(self) -> None:
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await asyncio.to_thread(engine.dispose)

    async def health(self) -> dict[str, Any]:
        try:
            await self._run(lambda conn: conn.execute(sa.text("SELECT 1")).scalar(), write=False)
        except ConnectorError as exc:
            return {"ok": False, "error": str(exc), "breaker": self.breaker.state}
        return {"ok": True, "breaker": self.breaker.state}

    # -- calls -----------------------------------------------------------------------------------

    async def call(self, operation: str, arguments: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
        self.operation(operation)
        args = dict(arguments or {})
        if operation == "transact":
            return await self._transact(args, idempotency_key)
        if operation == "query" and args.get("sql") is not None:
            return await self._select(str(args["sql"]), dict(args.get("params") or {}), int(args.get("limit") or 1000))
        table = await self._table(args.get("table"))
        if operation == "query":
            return await self._run(lambda conn: self._query(conn, table, args), write=False)
        if operation == "insert":
            return await self._run(lambda conn: self._insert(conn, table, args))
        if operation == "update":
            return await self._run(lambda conn: self._update(conn, table, args))
        if operation == "upsert":
            return await self._run(lambda conn: self._upsert(conn, table, args))
        return await self._run(lambda conn: self._changes(conn, table, args), write=False)

    async def _run(self, fn: Any, *, write: bool = True) -> Any:
        """``fn(connection)`` in a thread, in one transaction: committed, or rolled back for a read."""
        await self.open()
        engine = self._engine
        assert engine is not None

        def work() -> Any:
            with engine.connect() as conn:
                try:
                    value = fn(conn)
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit() if write else conn.rollback()
                return value

        try:
            return await asyncio.to_thread(work)
        except ConnectorError:
            raise
        except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, sa_exc.DisconnectionError) as exc:
            if _read_only_refused(exc):  # the statement would write: final, not a database that did not answer
                raise ConnectorError(f"sql: the database refused the statement: {_reason(exc)}") from exc
            raise ConnectorError(f"sql: the database did not answer: {_reason(exc)}", retryable=True) from exc
        except sa_exc.SQLAlchemyError as exc:
            raise ConnectorError(f"sql: the database refused the statement: {_reason(exc)}") from exc

    async def _table(self, name: Any) -> sa.Table:
        if not isinstance(name, str) or not name:
            raise ConnectorError("sql: name the table (`table`)")
        if name.lower().startswith(RESERVED_PREFIX):  # a workflow must not forge outbox messages
            raise ConnectorError(f"sql: table {name!r} is the outbox's; messages go in through `transact`")
        if self.tables is not None and name not in self.tables:
            raise ConnectorError(f"sql: table {name!r} is not one this connector may use ({', '.join(self.tables)})")
        found = self._meta.tables.get(name)
        if found is not None:
            return found
        async with self._lock:
            try:
                await self._run(lambda conn: self._meta.reflect(conn, only=[name]), write=False)
            except ConnectorError as exc:
                if "Could not reflect" in str(exc) or "NoSuchTable" in str(exc):
                    raise ConnectorError(f"sql: there is no table {name!r}") from exc
                raise
        return self._meta.tables[name]

    async def _select(self, sql: str, params: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        if self.tables is not None and not self.raw_sql:  # deny by default: a raw SELECT names any table
            raise ConnectorError(
                f"sql: this connector is limited to the tables {', '.join(self.tables)}, and a raw `sql` SELECT could "
                "read any other table; use `table` with `where`, `columns` and `order_by` instead, or an admin "
                "allows raw SELECTs with raw_sql=true once the database user can read only those tables",
                operation="query",
            )
        if not _SELECT.match(sql) or ";" in sql.strip().rstrip(";"):
            raise ConnectorError("sql: `sql` must be a single SELECT (or WITH) statement; values go in `params`")
        if _INTO.search(sql):  # a rollback does not undo a file written on the database server
            raise ConnectorError(
                "sql: `sql` may not contain INTO (SELECT ... INTO writes a file, a table or a variable on the "
                "database server, and `query` only reads); write with insert/update/transact, and put values in `params`",
                operation="query",
            )

        if _ESCAPED.search(sql):
            raise ConnectorError(
                "sql: `sql` may not contain a U&\"...\" name or U&'...' string (Unicode escapes would hide which "
                "function it calls); write names and text plainly, and put values in `params`",
                operation="query",
            )
        found = _OUTLIVES_ROLLBACK.search(sql)
        if found:
            name = " ".join(found.group(1).split()).upper()
            raise ConnectorError(
                f"sql: `sql` calls {name}, whose effect a rollback does not undo (a sequence moved, a lock the "
                "connection keeps, the server's state or files), which reads the server's files or which runs SQL "
                "given as text, and `query` is read-only (the database's rows only); remove it from the "
                "SELECT (a sequence's last value reads with LASTVAL or currval), and write with insert/transact",
                operation="query",
            )

        def select(conn: sa.Connection) -> list[dict[str, Any]]:
            # Read-only where the database has it, for what the names above miss (a stored function
            # that calls NEXTVAL or writes a MyISAM table): sequences ignore the rollback.
            if conn.dialect.name in ("postgresql", "mysql", "mariadb"):
                conn.execute(sa.text("SET TRANSACTION READ ONLY"))
            rows = [dict(m) for m in conn.execute(sa.text(sql), params).mappings().fetchmany(limit)]
            if conn.dialect.name == "postgresql":  # a lock a stored function took: not kept by the pooled connection
                conn.execute(sa.text("SELECT pg_advisory_unlock_all()"))
            return rows

        return await self._run(select, write=False)

    @staticmethod
    def _columns(table: sa.Table, names: Any, what: str) -> list[sa.Column[Any]]:
        if not isinstance(names, dict | list):
            raise ConnectorError(f"sql: `{what}` must be a mapping of column names")
        unknown = [n for n in names if n not in table.c]
        if unknown:
            raise ConnectorError(
                f"sql: table {table.name!r} has no column {', '.join(map(repr, unknown))} (in `{what}`); "
                f"its columns are: {', '.join(table.c.keys())}"
            )
        return [table.c[n] for n in names]

    def _where(self, table: sa.Table, where: Any, *, required: bool = False) -> list[Any]:
        where = where or {}
        if required and not where:
            raise ConnectorError("sql: `where` is empty, which would change every row; name the rows to change")
        cols = self._columns(table, where, "where")
        return [c == _matched(c, where[c.name]) for c in cols]

    def _query(self, conn: sa.Connection, table: sa.Table, args: dict[str, Any]) -> list[dict[str, Any]]:
        cols = self._columns(table, args["columns"], "columns") if args.get("columns") else [table]
        stmt = sa.select(*cols).where(*self._where(table, args.get("where")))
        if args.get("order_by"):
            stmt = stmt.order_by(*self._columns(table, args["order_by"], "order_by"))
        stmt = stmt.limit(int(args.get("limit") or 1000))
        return [dict(m) for m in conn.execute(stmt).mappings()]

    def _insert(self, conn: sa.Connection, table: sa.Table, args: dict[str, Any]) -> dict[str, Any]:
        rows = args.get("rows") if args.get("rows") is not None else [args.get("values") or {}]
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) and r for r in rows):
            raise ConnectorError("sql: insert needs `values` (a row) or `rows` (a list of rows)")
        clean = [{c.name: _coerce(c, r[c.name]) for c in self._columns(table, r, "values")} for r in rows]
        result = conn.execute(sa.insert(table), clean)
        out: dict[str, Any] = {"inserted": len(clean)}
        if len(clean) == 1 and result.inserted_primary_key is not None:
            out["key"] = list(result.inserted_primary_key)
        return out

    def _update(self, conn: sa.Connection, table: sa.Table, args: dict[str, Any]) -> dict[str, Any]:
        values = args.get("values") or {}
        cols = self._columns(table, values, "values")
        if not cols:
            raise ConnectorError("sql: update needs `values`")
        stmt = sa.update(table).where(*self._where(table, args.get("where"), required=True))
        result = conn.execute(stmt.values({c.name: _coerce(c, values[c.name]) for c in cols}))
        return {"updated": result.rowcount}

    def _upsert(self, conn: sa.Connection, table: sa.Table, args: dict[str, Any]) -> dict[str, Any]:
        values = args.get("values") or {}
        key = args.get("key") or []
        cols = self._columns(table, values, "values")
        self._columns(table, key, "key")
        if not key or any(k not in values for k in key):
            raise ConnectorError("sql: upsert needs `key` columns, each with a value in `values`")
        row = {c.name: _coerce(c, values[c.name]) for c in cols}
        changed = {k: v for k, v in row.items() if k not in key} or {key[0]: row[key[0]]}
        dialect = conn.dialect.name
        if dialect in ("postgresql", "sqlite"):
            mod = __import__(f"sqlalchemy.dialects.{dialect}", fromlist=["insert"])
            ins = mod.insert(table).values(row)
            stmt = ins.on_conflict_do_update(index_elements=key, set_={k: ins.excluded[k] for k in changed})
            conn.execute(stmt)
        elif dialect in ("mysql", "mariadb"):
            from sqlalchemy.dialects import mysql

            ins = mysql.insert(table).values(row)
            conn.execute(ins.on_duplicate_key_update({k: ins.inserted[k] for k in changed}))
        else:  # portable fallback: update, then insert if nothing matched (inside one transaction)
            where = [table.c[k] == _matched(table.c[k], row[k]) for k in key]
            if conn.execute(sa.update(table).where(*where).values(changed)).rowcount == 0:
                conn.execute(sa.insert(table).values(row))
        return {"upserted": 1, "key": {k: row[k] for k in key}}

    async def ensure_outbox(self) -> None:
        """Create the outbox tables in this database if they are missing. Two creators at once (the
        relay and a run, or two processes) may both find them missing: the one that loses the race
        sees them there on a second look."""
        if self._outbox_ready:
            return
        lock = self.__dict__.setdefault("_outbox_lock", asyncio.Lock())
        async with lock:
            if self._outbox_ready:
                return
            try:
                await self._run(self.outbox.create)
            except ConnectorError as exc:
                if "already exists" not in str(exc) and "duplicate" not in str(exc).lower():
                    raise
                await self._run(self.outbox.create)  # created meanwhile by another: checkfirst sees it now
            self._outbox_ready = True

    @property
    def outbox_in_use(self) -> bool:
        """Whether this process has used (or created) the outbox of this database."""
        return self._outbox_ready

    async def outbox_messages(
        self, *, status: str | None = None, target: str | None = None, limit: int = 100
    ) -> list[OutboxMessage]:
        """Messages of this database's outbox, oldest first."""
        await self.ensure_outbox()
        return list(
            await self._run(lambda conn: self.outbox.list(conn, status=status, target=target, limit=limit), write=False)
        )

    async def outbox_counts(self) -> dict[str, int]:
        """Messages of the outbox per status (``pending``, ``sent``, ``failed``)."""
        await self.ensure_outbox()
        return dict(await self._run(self.outbox.counts, write=False))

    async def outbox_retry(self, key: str) -> bool:
        """Put unsent message ``key`` back in line for delivery now; False if there is none."""
        await self.ensure_outbox()
        return bool(await self._run(lambda conn: self.outbox.retry(conn, key)))

    def deferred_calls(self, operation: str, arguments: dict[str, Any]) -> list[tuple[str, str]]:
        """A ``transact``'s messages: calls the outbox relay makes later (target, operation)."""
        messages = arguments.get("messages") if operation == "transact" else None
        if not isinstance(messages, list):
            return []
        return [(str(m["target"]), str(m["operation"])) for m in messages if isinstance(m, dict) and m.get("target") and m.get("operation")]

    async def _transact(self, args: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        writes, messages = args.get("writes") or [], args.get("messages") or []
        unknown = sorted(set(args) - {"writes", "messages"})
        if unknown or not isinstance(writes, list) or not isinstance(messages, list):
            raise ConnectorError("sql: transact takes `writes` and `messages`, two lists", operation="transact")
        if not writes and not messages:
            raise ConnectorError("sql: transact needs `writes` or `messages`", operation="transact")
        steps = {"insert": self._insert, "update": self._update, "upsert": self._upsert}
        plan = []
        for i, w in enumerate(writes):
            if not isinstance(w, dict) or w.get("op") not in steps:
                raise ConnectorError(f"sql: transact writes[{i}] needs `op`: insert, update or upsert", operation="transact")
            plan.append((steps[w["op"]], await self._table(w.get("table")), w))
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or not m.get("target") or not m.get("operation"):
                raise ConnectorError(f"sql: transact messages[{i}] needs `target` and `operation`", operation="transact")
        await self.ensure_outbox()
        key = idempotency_key or f"transact:{uuid.uuid4()}"

        def work(conn: sa.Connection) -> dict[str, Any]:
            prior = self.outbox.applied_result(conn, key)
            if prior is not NOT_APPLIED:
                return {**prior, "repeated": True}
            results = [fn(conn, table, w) for fn, table, w in plan]
            keys = [
                self.outbox.add(
                    conn,
                    target=m["target"],
                    operation=m["operation"],
                    arguments=m.get("arguments") or {},
                    key=str(m.get("key") or f"{key}/message-{i}"),
                )
                for i, m in enumerate(messages)
            ]
            result = {"results": results, "messages": keys}
            self.outbox.mark_applied(conn, key, result)
            return {**result, "repeated": False}

        try:
            return await self._run(work)
        except ConnectorError:
            # The same key applied by a concurrent call in the meantime: that call's result stands.
            prior = await self._run(lambda conn: self.outbox.applied_result(conn, key), write=False)
            if prior is NOT_APPLIED:
                raise
            return {**prior, "repeated": True}

    def _changes(self, conn: sa.Connection, table: sa.Table, args: dict[str, Any]) -> dict[str, Any]:
        name = args.get("column") or self.updated_column
        (col,) = self._columns(table, [name], "column")
        whole = list(table.primary_key.columns)
        pk = [c for c in whole if c is not col]  # the tie-breakers (none when the column is the key)
        if not whole:  # nothing orders rows that share a value: a page boundary among them would skip some
            raise ConnectorError(
                f"sql: changes of table {table.name!r} needs a primary key, to page through rows that share a "
                f"{col.name!r} without skipping any at a page boundary; give the table one (or read it with query)"
            )
        cursor = args.get("cursor")
        after, after_key = (cursor.get("after"), cursor.get("key")) if isinstance(cursor, dict) else (cursor, None)
        keys = after_key if isinstance(after_key, list) else [after_key]
        # a row whose column is NULL has no place in the order: PostgreSQL sorted it last, and a
        # cursor ending on it (after: None) read the table again from its start at every call
        stmt = sa.select(table).where(col.is_not(None))
        if after is not None:
            after = _coerce(col, after)
            if pk and after_key is not None and len(keys) == len(pk):
                stmt = stmt.where(_after(col, after, [(c, _coerce(c, k)) for c, k in zip(pk, keys, strict=True)]))
            else:  # a cursor of an earlier release for a composite key (or without a key): by the column
                stmt = stmt.where(col > after)
        stmt = stmt.order_by(col, *pk).limit(int(args.get("limit") or 100))
        rows = [dict(m) for m in conn.execute(stmt).mappings()]
        if not rows:
            return {"rows": [], "cursor": cursor}
        last = rows[-1]
        value = last[col.name]
        key = [_jsonable(last[c.name]) for c in pk]
        return {
            "rows": rows,
            "cursor": {"after": _jsonable(value), "key": (key[0] if len(pk) == 1 else key) if pk else None},
        }


def _jsonable(value: Any) -> Any:
    """A cursor value that survives JSON: dates and times as ISO text."""
    return value.isoformat() if isinstance(value, _dt.date | _dt.time) else value


def _after(col: sa.Column[Any], after: Any, keys: list[tuple[sa.Column[Any], Any]]) -> Any:
    """Rows after ``(after, *keys)`` in the order ``col, *key columns`` (a row value comparison,
    spelled out: not every database compares tuples)."""
    terms = [col > after]
    equal = [col == after]
    for c, k in keys:
        terms.append(sa.and_(*equal, c > k))
        equal.append(c == k)
    return sa.or_(*terms)


def _coerce(col: sa.Column[Any], value: Any) -> Any:
    """A value as the column's type wants it: ISO text for a date or time column becomes one."""
    if isinstance(value, str):
        try:
            kind = col.type.python_type
        except NotImplementedError:
            return value
        try:
            if kind is _dt.datetime:
                return _dt.datetime.fromisoformat(value)
            if kind is _dt.date:
                return _dt.date.fromisoformat(value)
        except ValueError:
            raise ConnectorError(  # the value is the caller's data: not quoted
                f"sql: column {col.name!r} holds a {kind.__name__}, and the value given is not one; pass it in "
                f"ISO form ({'2026-12-06T09:30:00' if kind is _dt.datetime else '2026-12-06'})"
            ) from None
    return value


def _matched(col: sa.Column[Any], value: Any) -> Any:
    """A value a row is selected by, of the column's kind, or a refusal before anything is sent.

    A value keeps the type its template gave it (``"{{ input.email }}"`` is the input's number if it
    sent one), and MariaDB/MySQL compare a text column with a number as numbers (``email = 0``
    matches every address not starting with a digit) and a number column with text as a number
    (``id = '1abc'`` is ``id = 1``). So a text column takes text, a number column a number or its
    digits, a flag a boolean; a list or a mapping never (None is ``IS NULL``)."""
    if value is None:
        return None
    try:
        kind = col.type.python_type
    except NotImplementedError:
        kind = None
    given = "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else type(value).__name__

    def refuse(want: str) -> ConnectorError:
        return ConnectorError(  # the value is the caller's data: not quoted
            f"sql: `where` column {col.name!r} holds {want}, and the value given is {given}; a row is selected by a "
            f"value of its column's kind (in a workflow file: \"{{{{ input.x | string }}}}\" or \"{{{{ input.x | int }}}}\")"
        )

    if isinstance(value, list | dict):
        raise refuse("one value")
    if kind is str:
        if not isinstance(value, str):
            raise refuse("text")
    elif kind is bool:
        if not isinstance(value, bool):
            raise refuse("a boolean")
    elif kind is int:
        if isinstance(value, bool):  # MariaDB/MySQL's BOOLEAN is a TINYINT(1): a flag takes one
            if type(col.type).__name__.upper() == "TINYINT" and getattr(col.type, "display_width", None) == 1:
                return value
            raise refuse("an integer")
        finite = value.is_finite() if isinstance(value, decimal.Decimal) else isinstance(value, float) and math.isfinite(value)
        if finite and value == int(value):
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"-?\d{1,30}", value.strip()):
            return int(value)
        if not isinstance(value, int):
            raise refuse("an integer")
    elif kind is float or kind is decimal.Decimal:
        if isinstance(value, str) and re.fullmatch(r"-?\d{1,30}(\.\d{1,30})?", value.strip()):
            return float(value) if kind is float else decimal.Decimal(value.strip())
        if isinstance(value, decimal.Decimal) and value.is_finite():  # as the connector reads a NUMERIC back
            return float(value) if kind is float else value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise refuse("a number")
    return _coerce(col, value)


def _read_only_refused(exc: BaseException) -> bool:
    """Whether the database refused a write inside a read-only transaction (SQLSTATE 25006;
    MySQL and MariaDB error 1792), which some drivers raise as an operational error."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or (orig.args[0] if orig is not None and orig.args else None)
    return code in ("25006", 1792)


def _reason(exc: BaseException) -> str:
    """The driver's message without the statement and its parameters (which may hold personal data)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).splitlines()[0] if str(orig or exc) else type(exc).__name__
    return f"{type(orig or exc).__name__}: {text}"[:300]
