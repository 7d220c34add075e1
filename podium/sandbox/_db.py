"""The sandbox company's database: one SQL database seeded from the sample data shipped in the package,
a SQLite file by default, PostgreSQL or MariaDB/MySQL by URL (SQLAlchemy Core writes each dialect's SQL).

Every business system (CRM, support desk, marketing, ERP, mailbox) keeps its tables here, and every
write a system receives is also logged in ``received``: that log is what ``podium demo`` and the
dashboard's Sandbox page show. Business events the systems publish wait in ``events`` (an outbox)
until the event bus has taken them (``sent_at``). A request's writes, its ``received`` entry and its
event are one transaction.

The systems' statements are plain SQL with ``?`` placeholders that every dialect accepts as written;
what differs between dialects (generated ids, upserts, column types) goes through SQLAlchemy.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ConfigError, install_hint

try:
    import sqlalchemy as sa
except ImportError:  # reported by Database() with the command that installs it
    sa = None  # type: ignore[assignment]

_SEEDED = ("customers", "interactions", "products", "purchase_orders", "campaigns")

#: URL scheme -> the driver Podium installs (psycopg 3 in the postgres extra, PyMySQL in connectors).
_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg", "mysql": "mysql+pymysql",
            "mariadb": "mariadb+pymysql"}
_EXAMPLES = ("sqlite:///path/company.db, postgresql://user@127.0.0.1:5432/NAME or "
             "mysql+pymysql://user@127.0.0.1:3306/NAME")


@functools.cache
def tables() -> Any:
    """The company's tables (a ``sqlalchemy.MetaData``), in types every dialect has: keys are
    bounded strings (MariaDB indexes no TEXT), times and money are doubles, ids are generated."""
    from sqlalchemy.dialects import mysql

    meta = sa.MetaData()
    key = sa.String(191)  # 191 x 4 bytes fits the oldest utf8mb4 index limit
    text = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")  # a batch's log exceeds 64 KB
    real: Any = sa.Double().with_variant(sa.REAL(), "sqlite")

    def table(name: str, *columns: Any) -> None:
        # utf8mb4_bin: ids and names compare exactly on MariaDB, as on the other two
        sa.Table(name, meta, *columns, mysql_charset="utf8mb4", mysql_collate="utf8mb4_bin")

    def serial() -> Any:
        return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)

    c = sa.Column
    table("customers", c("id", key, primary_key=True), c("name", text), c("email", text), c("plan", text),
          c("tier", text), c("since", text), c("country", text))
    table("interactions", serial(), c("customer_id", key), c("at", text), c("channel", text), c("text", text))
    table("tasks", serial(), c("customer_id", key), c("title", text), c("due", text), c("owner", text))
    table("tickets", serial(), c("customer_id", key), c("message", text), c("status", text), c("intent", text),
          c("priority", text), c("created_at", real))
    table("replies", serial(), c("ticket_id", sa.Integer), c("text", text), c("author", text), c("at", real))
    table("campaigns", c("id", key, primary_key=True), c("name", text), c("channel", text), c("offer", text))
    table("campaign_members", c("campaign_id", key, primary_key=True), c("customer_id", key, primary_key=True),
          c("note", text))
    table("products", c("sku", key, primary_key=True), c("name", text), c("vendor", key), c("unit_cost", real),
          c("list_price", real), c("min_margin_pct", real), c("channels", text), c("stock", sa.Integer), c("facts", text))
    table("purchase_orders", c("po_id", key, primary_key=True), c("sku", key), c("qty", sa.Integer),
          c("unit_cost", real), c("status", key), c("flag", text))
    table("mails", serial(), c("sender", text), c("recipients", text), c("subject", text), c("body", text),
          c("message_id", text), c("at", real))
    table("received", serial(), c("system", key), c("operation", text), c("body", text), c("at", real))
    table("orders", serial(), c("customer_id", key), c("sku", key), c("qty", sa.Integer), c("amount", real),
          c("at", real))
    table("events", serial(), c("event_id", key, unique=True), c("system", key), c("topic", text), c("payload", text),
          c("at", real), c("sent_at", real))
    table("listings", c("channel", key, primary_key=True), c("sku", key, primary_key=True), c("unit_cost", real),
          c("list_price", real), c("effective", text), c("at", real))
    return meta


def sample() -> dict[str, Any]:
    """The sample company shipped in the package (``podium/sandbox/data/company.json``)."""
    text = resources.files("podium.sandbox").joinpath("data/company.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@functools.cache
def _named(sql: str) -> str:
    """``?`` placeholders as SQLAlchemy's ``:p0, :p1...`` (the systems' SQL holds no other ``?``)."""
    count = iter(range(sql.count("?")))
    return re.sub(r"\?", lambda _: f":p{next(count)}", sql)


class Conn:
    """One transaction on the company database, as the systems use it."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.dialect: str = conn.dialect.name

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run ``sql`` (``?`` placeholders); the result has ``rowcount`` and the rows."""
        return self._conn.execute(sa.text(_named(sql)), {f"p{i}": v for i, v in enumerate(params)})

    def insert(self, table: str, values: dict[str, Any]) -> int:
        """Insert a row into a table with a generated ``id``; returns that id."""
        result = self._conn.execute(sa.insert(tables().tables[table]).values(values))
        return int(result.inserted_primary_key[0])

    def upsert(self, table: str, items: list[dict[str, Any]], key: tuple[str, ...], *, replace: bool = True) -> None:
        """Insert ``items``; one whose ``key`` is taken replaces that row (``replace``) or is skipped."""
        if not items:
            return
        target = tables().tables[table]
        others = [k for k in items[0] if k not in key]
        if self.dialect in ("mysql", "mariadb"):
            from sqlalchemy.dialects import mysql

            ins = mysql.insert(target)
            kept = {k: ins.inserted[k] for k in others} if replace and others else {key[0]: target.c[key[0]]}
            self._conn.execute(ins.on_duplicate_key_update(kept), items)
            return
        from sqlalchemy.dialects import postgresql, sqlite

        pg = postgresql.insert(target) if self.dialect == "postgresql" else sqlite.insert(target)
        if replace and others:
            stmt = pg.on_conflict_do_update(index_elements=list(key), set_={k: pg.excluded[k] for k in others})
        else:
            stmt = pg.on_conflict_do_nothing(index_elements=list(key))
        self._conn.execute(stmt, items)


class Database:
    """The company database at ``url``: a ``sqlite:///`` file, ``postgresql://`` or ``mysql://`` /
    ``mariadb://`` (``+driver`` optional). The database itself must exist on a server; the sandbox
    creates its tables. ``source`` says where the URL came from, for error messages."""

    def __init__(self, url: str, *, source: str = "the sandbox's database URL") -> None:
        if sa is None:
            raise ConfigError(f"the sandbox company's database needs SQLAlchemy: {install_hint('demo')}")
        self.source = source
        try:
            parsed = sa.engine.make_url(url)
        except Exception:
            raise ConfigError(f"{source}: {_masked(url)!r} is not a database URL; use {_EXAMPLES}") from None
        scheme = parsed.drivername
        parsed = parsed.set(drivername=_DRIVERS.get(scheme, scheme))
        backend = parsed.get_backend_name()
        if backend not in ("sqlite", "postgresql", "mysql", "mariadb"):
            raise ConfigError(f"{source}: the sandbox runs on SQLite, PostgreSQL or MariaDB/MySQL, not {backend!r} "
                              f"({parsed.render_as_string(hide_password=True)}); use {_EXAMPLES}")
        if backend == "sqlite" and not parsed.database:
            raise ConfigError(f"{source}: {url!r} names no file; use sqlite:///path/company.db")
        self.url: str = parsed.render_as_string(hide_password=False)
        """The URL with its driver (what the ``company_db`` sql connector opens)."""
        self.shown: str = parsed.render_as_string(hide_password=True)
        """The URL as shown to people (no password)."""
        self.dialect = backend
        self.path = Path(parsed.database) if backend == "sqlite" and parsed.database else None
        """The SQLite file (None on a server)."""
        try:
            if self.path is not None:
                self.engine = sa.create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})
                sa.event.listen(self.engine, "connect", _wal)
            else:
                self.engine = sa.create_engine(parsed, pool_pre_ping=True, pool_size=4,
                                               connect_args={"connect_timeout": 10})
        except ImportError as exc:
            ours = {"postgresql": ("psycopg", "postgres")}.get(backend, ("pymysql", "connectors"))
            fix = (install_hint(ours[1]) if exc.name == ours[0] else
                   f"pip install the module, or use the driver Podium installs: {backend}+{ours[0]}://")
            raise ConfigError(f"{source}: {self.shown} needs the {exc.name} driver: {fix}") from None
        except sa.exc.NoSuchModuleError:
            raise ConfigError(f"{source}: SQLAlchemy has no driver {parsed.drivername!r} ({self.shown}); use "
                              f"{_EXAMPLES}") from None

    @contextlib.contextmanager
    def connect(self) -> Iterator[Conn]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self.engine.begin() as conn:
            yield Conn(conn)

    def check(self) -> None:
        """Connect once; a server that does not answer (or lacks the database) is a ConfigError."""
        try:
            with self.engine.connect():
                pass
        except sa.exc.DBAPIError as exc:
            raise ConfigError(_unreachable(self, exc)) from None

    def has_tables(self) -> bool:
        """Whether a sandbox has created its tables here (a server database may be empty)."""
        if self.path is not None and not self.path.is_file():
            return False
        self.check()
        return bool(sa.inspect(self.engine).has_table("received"))

    def create(self) -> None:
        """Create the tables that are missing (a database from an older sandbox lacks the newer ones)."""
        tables().create_all(self.engine, checkfirst=True)

    def reset(self) -> None:
        """Drop the company's tables (on SQLite: remove the file and its WAL files)."""
        if self.path is not None:
            self.engine.dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        else:
            self.check()
            tables().drop_all(self.engine, checkfirst=True)

    def seed(self) -> bool:
        """Create the tables and load the sample data, unless the database already holds it; returns
        whether it seeded (a kept sandbox keeps its tickets and mails across processes)."""
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.check()
        self.create()
        with self.connect() as conn:
            if conn.execute("SELECT COUNT(*) FROM customers").scalar():
                return False
            data = sample()
            for name in _SEEDED:
                conn._conn.execute(sa.insert(tables().tables[name]), data[name])
        return True

    def dispose(self) -> None:
        """Close the pooled connections."""
        self.engine.dispose()


def _wal(dbapi_conn: Any, record: Any) -> None:
    dbapi_conn.execute("PRAGMA journal_mode=WAL")


def _masked(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _unreachable(db: Database, exc: Any) -> str:
    """What went wrong reaching the server, and the fix."""
    why = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(getattr(exc, "orig", exc)).strip() else type(exc).__name__
    url = sa.engine.make_url(db.url)
    if "does not exist" in why or "Unknown database" in why:
        create = (f"createdb -h {url.host or '127.0.0.1'} -U {url.username or 'postgres'} {url.database}"
                  if db.dialect == "postgresql" else f"mysql -h {url.host or '127.0.0.1'} -u {url.username or 'root'} "
                  f"-e 'CREATE DATABASE {url.database}'")
        return f"{db.source}: the database {url.database!r} does not exist on {url.host}: create it ({create})"
    return (f"{db.source}: cannot reach the sandbox database {db.shown} ({why}); start the server or fix the URL "
            f"(host, port, user, password)")


def connect(db: Database) -> contextlib.AbstractContextManager[Conn]:
    """One transaction on the company database ``db``."""
    return db.connect()


def log(conn: Conn, system: str, operation: str, body: Any) -> None:
    """Record what ``system`` received (shown by ``podium demo`` and :meth:`Sandbox.received`)."""
    conn.execute(
        "INSERT INTO received (system, operation, body, at) VALUES (?, ?, ?, ?)",
        (system, operation, json.dumps(body, ensure_ascii=False, default=str), time.time()),
    )


def publish(conn: Conn, system: str, topic: str, data: dict[str, Any]) -> dict[str, Any]:
    """Put business event ``topic`` in the outbox; the sandbox's event relay sends it on the bus.
    The payload carries ``idempotency_key`` (the event's id: a trigger starts one run per event,
    however often the bus delivers it) and ``source`` (``northwind.SYSTEM``)."""
    event_id = uuid.uuid4().hex
    payload = {**data, "idempotency_key": event_id, "source": f"northwind.{system}"}
    conn.execute(
        "INSERT INTO events (event_id, system, topic, payload, at) VALUES (?, ?, ?, ?, ?)",
        (event_id, system, topic, json.dumps(payload, ensure_ascii=False, default=str), time.time()),
    )
    return payload


def rows(conn: Conn, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(sql, params).mappings()]
