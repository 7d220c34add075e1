"""One SQL connection for the memory, vector and knowledge tables, chosen by the run store's URL.

These tables live beside the run store's (same SQLite file, same PostgreSQL database) but are not
the run store's: each component (``vectors``, ``memory``, ``knowledge``) has its own versioned
migrations, recorded in ``podium_ext_migrations``. ``memory://`` is an in-process SQLite database,
so the embedded and in-memory backends run the same SQL.

Statements are written with ``?`` placeholders and ``{blob}``/``{real}``/``{id}``/``{serial}`` type
names in migrations; :class:`Database` translates them for its dialect.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
import weakref
from collections.abc import AsyncIterator, Sequence
from typing import Any

from ._redact import redact_stored, stored_forms
from .errors import ConfigError, StoreError, install_hint

#: Dialect-specific type names used in migrations.
TYPES = {
    "sqlite": {"blob": "BLOB", "real": "REAL", "id": "TEXT", "bigint": "INTEGER", "json": "TEXT"},
    "postgres": {
        "blob": "BYTEA",
        "real": "DOUBLE PRECISION",
        "id": 'TEXT COLLATE "C"',
        "bigint": "BIGINT",
        "json": "TEXT",
    },
}

_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS podium_ext_migrations "
    "(component TEXT NOT NULL, version INTEGER NOT NULL, applied_at {real}, PRIMARY KEY (component, version))"
)


class Tx:
    """Statements inside one transaction (see :meth:`Database.transaction`)."""

    def __init__(self, db: Database, conn: Any) -> None:
        self._db = db
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self._db._execute(self._conn, sql, params)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._db._executemany(self._conn, sql, rows)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self._db._fetchall(self._conn, sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None


class Database:
    """A connection (SQLite) or a small pool (PostgreSQL). Methods are coroutines."""

    dialect: str = "sqlite"
    url: str = ""
    _users = 0

    async def open(self) -> None:
        """Connect (counted: a database shared by several users closes with the last one)."""
        self._users += 1
        if self._users == 1:
            await self._connect()

    async def close(self) -> None:
        if self._users > 0:
            self._users -= 1
            if self._users == 0:
                await self._disconnect()

    async def _connect(self) -> None: ...

    async def _disconnect(self) -> None: ...

    async def __aenter__(self) -> Database:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def sql(self, text: str) -> str:
        """``text`` with this dialect's placeholders and type names."""
        return text

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        raise NotImplementedError

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self.transaction() as tx:
            return await tx.execute(sql, params)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self.transaction() as tx:
            await tx.executemany(sql, rows)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self.transaction() as tx:
            return await tx.fetchall(sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def migrate(self, component: str, migrations: Sequence[tuple[int, str]]) -> list[int]:
        """Apply ``component``'s migrations that are not recorded yet, each in its own transaction."""
        applied: list[int] = []
        types = TYPES[self.dialect]
        async with self.transaction() as tx:
            await tx.execute(_MIGRATIONS_TABLE.format(**types))
        for version, text in migrations:
            async with self.transaction() as tx:
                await self._lock_migrations(tx)
                done = await tx.fetchone(
                    "SELECT 1 FROM podium_ext_migrations WHERE component=? AND version=?",
                    (component, version),
                )
                if done:
                    continue
                for stmt in text.format(**types).split(";"):
                    if stmt.strip():
                        await tx.execute(stmt)
                await tx.execute(
                    "INSERT INTO podium_ext_migrations VALUES (?, ?, ?)", (component, version, _now())
                )
                applied.append(version)
        return applied

    async def _lock_migrations(self, tx: Tx) -> None: ...

    # -- per-dialect primitives ------------------------------------------------------------------

    async def _execute(self, conn: Any, sql: str, params: Sequence[Any]) -> int:
        raise NotImplementedError

    async def _executemany(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    async def _fetchall(self, conn: Any, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError


def _now() -> float:
    import time

    return time.time()


def durability_of(value: str | None = None) -> str:
    """``value`` (``crash`` or ``power``), or the ``durability`` setting when None."""
    if value is None:
        from .settings import setting

        value = str(setting("durability"))
    if value not in ("crash", "power"):
        raise ConfigError(f"durability must be 'crash' or 'power', got {value!r}")
    return value


#: Makes a PostgreSQL session's commits wait for their WAL flush (durability ``power``) where the
#: server, the database or the role turned ``synchronous_commit`` off; a stricter value (waiting
#: for standbys: ``remote_apply``...) is kept. Run once per new connection.
PG_POWER = "SELECT set_config('synchronous_commit', 'on', false) WHERE current_setting('synchronous_commit') = 'off'"


async def pg_power(conn: Any) -> None:
    """A pool's ``configure`` hook in durability ``power``: see :data:`PG_POWER`."""
    await conn.execute(PG_POWER)


#: TCP settings of every PostgreSQL connection Podium opens, each unless the URL sets it. Without
#: them a server that vanished without a reset (a network partition, a host powered off) leaves a
#: statement waiting for its answer for the kernel's keepalive time (two hours) and unsent data for
#: its retransmissions (about 15 minutes). With them an idle or waiting connection is given up after
#: about 25 s of silence (probes after 10 s, every 5 s, 3 unanswered), and data unacknowledged for
#: 30 s (``tcp_user_timeout``, libpq 12 and later) ends its connection too. Unix sockets ignore them.
PG_KEEPALIVES = {"keepalives": "1", "keepalives_idle": "10", "keepalives_interval": "5", "keepalives_count": "3"}
PG_TCP_USER_TIMEOUT_MS = "30000"


def without_password(text: str, url: str) -> str:
    """``text`` (a libpq message about ``url``) with the URL's password, as written and decoded,
    made ``***``: libpq echoes a token it cannot read (a bare ``%`` or space in a pasted password)
    or the whole URI, and such a message goes to terminals, logs and CI output."""
    from urllib.parse import unquote

    # libpq reads a URI's password up to the first '@' before the first '/' ('?' and '#' are its own);
    # up to the last '@' too (a password with a bare '@', which libpq cuts there: the rest is not shown)
    found = re.findall(r"^[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@]*:([^/@]*)@", url)
    found += re.findall(r"^[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@]*:([^/]*)@", url)
    found += [quoted or plain for quoted, plain in re.findall(r"(?i)\bpassword\s*=\s*(?:'([^']*)'|([^\s&]*))", url)]
    for secret in sorted({s for s in found if s}, key=len, reverse=True):
        text = text.replace(secret, "***").replace(unquote(secret), "***")
    return text


def shown_url(url: str) -> str:
    """A store URL as printed, logged or audited (terminals, CI logs, /readyz, the audit log): its
    password masked, as libpq reads it, and any other credential :func:`podium.secret.redact` knows."""
    from .secret import redact

    return redact(without_password(str(url), str(url)))


def pg_conninfo(url: str, params: dict[str, Any], **defaults: str) -> str:
    """``url`` as a libpq conninfo with :data:`PG_KEEPALIVES` (and ``tcp_user_timeout`` where this
    libpq has it) plus ``defaults``, each where ``params`` (the URL's own) does not set it."""
    from psycopg import pq
    from psycopg.conninfo import make_conninfo

    more: dict[str, str] = {**PG_KEEPALIVES, **defaults}
    if pq.version() >= 120000:
        more["tcp_user_timeout"] = PG_TCP_USER_TIMEOUT_MS
    return make_conninfo(url, **{k: v for k, v in more.items() if k not in params})


class SQLiteStoreError(StoreError, sqlite3.OperationalError):
    """A SQLite file that cannot be written or read (disk full, read-only, an I/O error, a write
    lock held past the busy timeout): a :class:`StoreError` that names the file and what to do,
    still a ``sqlite3.OperationalError`` for code that catches that."""


def _sqlite_hint(low: str) -> str:
    if "full" in low:
        return (
            "free space on its disk (or raise the process's file size limit); what was written is kept, "
            "and a write that failed was not acknowledged: unfinished runs resume from their logs"
        )
    if "disk i/o" in low:
        return (
            "free space on its disk if it is full (or raise the process's file size limit); else the disk "
            "fails, or its -wal or -shm file was deleted while a process had the store open (never delete "
            "them: stop every process using the store cleanly, each writes its part back as it closes); what "
            "was written is kept, and a write that failed was not acknowledged"
        )
    if "readonly" in low or "read-only" in low or "unable to open" in low:
        return (
            "make the file and its folder writable by this user (SQLite writes the -wal and -shm files "
            "beside it)"
        )
    if "locked" in low or "busy" in low:
        return (
            "another process held its write lock for longer than the busy timeout (10 s): find it with "
            "'fuser FILE' and end its transaction, or use PostgreSQL for many writers"
        )
    return ""


# Python's sqlite3 binds an int, float or str parameter directly but looks every other one up
# among its adapters, then for __adapt__ and __conform__ attributes: ~0.3 µs for each None (a
# run's rows bind ~20). An adapter for None, a C call returning None, takes the lookup's first
# hit instead: the same NULL, a fifth of the time. Not set over one the program registered.
if (type(None), sqlite3.PrepareProtocol) not in sqlite3.adapters:
    sqlite3.register_adapter(type(None), {}.get)  # type: ignore[arg-type]  # dict.get(None) is None


class StoreConnection(sqlite3.Connection):
    """The SQLite connection of the stores. An operational failure raises :class:`SQLiteStoreError`
    naming the file; a ``ROLLBACK`` after SQLite rolled the transaction back by itself (a full disk,
    an I/O error) does nothing, instead of raising "no transaction is active" over the error that
    caused it."""

    def __init__(self, database: Any, *args: Any, **kw: Any) -> None:
        super().__init__(database, *args, **kw)
        self.where = os.fspath(database)

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if sql == "ROLLBACK" and not self.in_transaction:
            return self.cursor()
        try:
            return super().execute(sql, parameters)
        except SQLiteStoreError:
            raise
        except sqlite3.OperationalError as exc:
            raise self.failed(exc) from exc

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.OperationalError as exc:
            raise self.failed(exc) from exc

    def failed(self, exc: sqlite3.OperationalError) -> SQLiteStoreError:
        hint = _sqlite_hint(str(exc).lower())
        err = SQLiteStoreError(f"SQLite store {self.where!r}: {exc}" + (f"; {hint}" if hint else ""))
        err.sqlite_errorcode = exc.sqlite_errorcode
        err.sqlite_errorname = exc.sqlite_errorname
        return err


class SQLiteDatabase(Database):
    """One ``sqlite3`` connection used on the event loop's thread, as the SQLite run store does.
    ``path`` ``":memory:"`` is a private in-process database (the ``memory://`` backend).
    ``durability``: as the run store's on the same file (None: the ``durability`` setting)."""

    dialect = "sqlite"

    def __init__(self, path: str, url: str = "", *, durability: str | None = None) -> None:
        self.path = path
        self.url = url or f"sqlite:///{path}"
        self.durability = durability
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def _connect(self) -> None:
        try:
            if self.path != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10.0, factory=StoreConnection
            )
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open SQLite database {self.path!r}: {exc}") from exc
        if self.path != ":memory:":
            conn.execute("PRAGMA journal_mode=WAL")
        # The run store's setting: a memory written (or forgotten) is on disk when acknowledged.
        conn.execute("PRAGMA synchronous=FULL" if durability_of(self.durability) == "power" else "PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=10000")
        self._conn = conn

    async def _disconnect(self) -> None:
        # An in-process database lives as long as this object: its data is in the connection.
        if self._conn is not None and self.path != ":memory:":
            self._conn.close()
            self._conn = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"database {self.url} is not open; use 'async with' or await open()")
        return self._conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        conn = self.conn
        async with self._lock:  # one connection: transactions of concurrent coroutines take turns
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(self, conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # Single statements run in autocommit, outside the lock: nothing here suspends between a
    # transaction's statements, so they cannot land inside another coroutine's transaction.
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self.conn.execute(sql, tuple(params)).rowcount)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(sql, tuple(params)).fetchall())

    async def _execute(self, conn: Any, sql: str, params: Sequence[Any]) -> int:
        return int(conn.execute(sql, tuple(params)).rowcount)

    async def _executemany(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        conn.executemany(sql, [tuple(r) for r in rows])

    async def _fetchall(self, conn: Any, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return list(conn.execute(sql, tuple(params)).fetchall())


class PostgresDatabase(Database):
    """A psycopg 3 connection pool (autocommit; :meth:`transaction` opens a real transaction)."""

    dialect = "postgres"

    def __init__(self, url: str, *, max_size: int = 4, durability: str | None = None) -> None:
        self.url = url
        self.max_size = max_size
        self.durability = durability
        self._pool: Any = None

    async def _connect(self) -> None:
        try:
            from psycopg.conninfo import conninfo_to_dict
            from psycopg_pool import AsyncConnectionPool
        except ImportError as exc:
            raise ConfigError(f"PostgreSQL needs psycopg: {install_hint('postgres')} ({exc})") from exc
        try:
            conninfo = pg_conninfo(self.url, conninfo_to_dict(self.url), application_name="podium-memory")
        except Exception as exc:  # psycopg.ProgrammingError: a URL libpq cannot parse
            raise ConfigError(
                f"invalid PostgreSQL URL for memory tables: {without_password(str(exc).strip(), self.url)}; percent-encode "
                "a password's special characters (% is %25, a space %20, @ %40): postgresql://user:password@host:5432/database"
            ) from exc
        pool = AsyncConnectionPool(
            conninfo,
            kwargs={"autocommit": True},
            min_size=1,
            max_size=self.max_size,
            name="podium-memory",
            open=False,
            configure=pg_power if durability_of(self.durability) == "power" else None,
        )
        try:
            await pool.open(wait=True, timeout=15)
        except Exception as exc:
            await pool.close()
            raise ConfigError(f"cannot connect to PostgreSQL for memory tables: {without_password(str(exc), self.url)}") from exc
        self._pool = pool

    async def _disconnect(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    def sql(self, text: str) -> str:
        return text.replace("?", "%s")

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        if self._pool is None:
            raise StoreError(f"database {self.url} is not open; use 'async with' or await open()")
        async with self._pool.connection() as conn, conn.transaction():
            yield Tx(self, conn)

    async def _lock_migrations(self, tx: Tx) -> None:
        await tx.execute("SELECT pg_advisory_xact_lock(7380983710203310082)")

    async def _execute(self, conn: Any, sql: str, params: Sequence[Any]) -> int:
        cur = await conn.execute(self.sql(sql), tuple(params))
        return int(cur.rowcount)

    async def _executemany(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            async with conn.cursor() as cur:
                await cur.executemany(self.sql(sql), [tuple(r) for r in rows])

    async def _fetchall(self, conn: Any, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        cur = await conn.execute(self.sql(sql), tuple(params))
        return list(await cur.fetchall()) if cur.description else []


def check_url_form(url: str) -> None:
    """Refuse ``sqlite:/x.db`` and the like: a scheme without ``://`` would otherwise be read as a
    plain file path, and the store made in a new folder called ``sqlite:``. (One letter before the
    colon is a Windows drive, ``C:\\x.db``: a path.)"""
    head, sep, rest = url.partition(":")
    if "://" in url or not sep or len(head) < 2 or not head[0].isalpha():
        return
    if not all(ch.isalnum() or ch in "+.-" for ch in head):
        return
    path = rest.lstrip("/")
    if "@" in path:  # postgresql:/user:password@host/db: the password is not shown back
        shown = re.sub(r"^([^:@/]*):[^/]*@", r"\1:***@", path)
        raise ConfigError(
            f"store URL '{head}:{rest[: len(rest) - len(path)]}{shown}' has the scheme {head!r} but not '://' after it, so it is no store URL: "
            f"write postgresql://{shown}"
        )
    raise ConfigError(
        f"store URL {url!r} has the scheme {head!r} but not '://' after it, so it is no store URL: write "
        f"sqlite:////{path} for an absolute path, sqlite:///{path} for one relative to the working folder, "
        "or postgresql://user@host/db"
    )


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///rel.db`` / ``sqlite:////abs.db`` URL (or a plain path)."""
    if "://" not in url:
        return url
    path = url.removeprefix("sqlite://")
    return path[1:] if path.startswith("/") else path


def open_database(url: str, *, durability: str | None = None) -> Database:
    """A (not yet open) database for a store URL: ``memory://``, ``sqlite:///...``, ``postgresql://...``.
    ``durability``: ``crash`` or ``power`` (None: the ``durability`` setting)."""
    check_url_form(url)
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "memory":
        return SQLiteDatabase(":memory:", url, durability="crash")  # nothing on disk to sync
    if scheme in ("sqlite", ""):
        path = sqlite_path(url)
        if not path:
            raise ConfigError(f"URL {url!r} names no file; use sqlite:///podium.db")
        return SQLiteDatabase(path, url if scheme else f"sqlite:///{path}", durability=durability)
    if scheme in ("postgresql", "postgres"):
        return PostgresDatabase(url, durability=durability)
    raise ConfigError(
        f"unknown store URL {url!r}: use memory://, sqlite:///path.db or postgresql://user@host/db"
    )


_SHARED: weakref.WeakKeyDictionary[Any, Database] = weakref.WeakKeyDictionary()


def database_for(store: Any) -> Database:
    """The database that goes with a run store object: the same file or server, and for a
    ``memory://`` store one in-process database shared by everything that uses that store."""
    db = _SHARED.get(store)
    if db is None:
        db = _SHARED[store] = open_database(store.url, durability=getattr(store, "durability", None))
    return db


async def has_table(db: Database, name: str) -> bool:
    """Whether ``name`` exists (the run tables are absent from a database used only for memory)."""
    if db.dialect == "postgres":
        row = await db.fetchone("SELECT to_regclass(?) IS NOT NULL", (name,))
    else:
        row = await db.fetchone("SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?", (name,))
    return bool(row and row[0])


async def replace_text(
    db: Database, table: str, column: str, old: str, new: str, key: str | None = None
) -> list[Any]:
    """``UPDATE table SET column = replace(column, old, new)`` where it occurs; returns the ``key``
    column (default ``column``) of every row changed."""
    find = "strpos" if db.dialect == "postgres" else "instr"
    return [
        r[0]
        for r in await db.fetchall(
            f"UPDATE {table} SET {column} = replace({column}, ?, ?) WHERE {find}({column}, ?) > 0 "
            f"RETURNING {key or column}",
            (old, new, old),
        )
    ]


async def redact_json(
    db: Database, table: str, column: str, key: str, texts: Sequence[str], new: str
) -> dict[Any, int]:
    """Replace ``texts`` by ``new`` inside the JSON of ``column`` (in strings and keys, and a number
    that is a whole text: :func:`podium._redact.redact_stored`), in one transaction. Returns the
    ``key`` (one column, or a tuple for ``"a, b"``) of every row changed, with how many of the
    texts it held."""
    forms = stored_forms(texts)
    if not forms:
        return {}
    find = "strpos" if db.dialect == "postgres" else "instr"
    where = " OR ".join([f"{find}({column}, ?) > 0"] * len(forms))
    lock = " FOR UPDATE" if db.dialect == "postgres" else ""  # SQLite's transaction holds the write lock
    by_key = " AND ".join(f"{k.strip()} = ?" for k in key.split(","))
    changed: dict[Any, int] = {}
    async with db.transaction() as tx:
        for *row_key, text in await tx.fetchall(f"SELECT {key}, {column} FROM {table} WHERE {where}{lock}", forms):
            text, hits = redact_stored(text, texts, new)
            if hits:
                await tx.execute(f"UPDATE {table} SET {column} = ? WHERE {by_key}", (text, *row_key))
                changed[row_key[0] if len(row_key) == 1 else tuple(row_key)] = hits
    return changed
