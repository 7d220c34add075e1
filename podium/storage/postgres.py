"""PostgreSQL store: for several engines (processes, hosts) sharing one database.

``postgresql://user:password@host:5432/database`` (or ``postgres://``; any libpq parameter may be
added as a query string, e.g. ``?sslmode=require`` or ``?options=-csearch_path%3Dpodium`` to keep
Podium's tables in their own schema).

Design:

* A small connection pool (psycopg_pool, autocommit connections). Each method borrows one
  connection for one statement, so concurrent coroutines never share a transaction and commits
  from many runs proceed in parallel (the server batches their WAL flushes). A single connection
  serialises every commit: measured on one host, 8 connections gave about 3x the append throughput
  of one at 8+ concurrent writers, at the same single-writer latency.
* Every write is a single SQL statement, hence its own transaction with one round trip: the hot
  path (one event, no run update) is a plain ``INSERT``; an append with several events or a run
  update, a new run with its first events, and a claim are each one statement built from
  data-modifying CTEs. A failed statement writes nothing.
* Fencing: ``(run_id, seq)`` is the events primary key; a duplicate raises :class:`LeaseLost`. The
  foreign key to ``runs`` turns an event for an unknown run into :class:`NotFound`.
* ``claim_runs`` locks its candidates ``FOR NO KEY UPDATE SKIP LOCKED`` (``FOR UPDATE`` minus the
  key lock, so an event insert's foreign-key check on the run does not make claimers skip it), so
  concurrent claimers never wait on each other and never get the same run.
* Schema migrations are versioned (:data:`MIGRATIONS`, table ``schema_migrations``) and applied on
  :meth:`PostgresStore.open` under ``pg_advisory_xact_lock``, so processes opening the same
  database at once do not race.
* Payloads are ``TEXT``, not ``jsonb``: they come back byte for byte. Ids use the "C" collation so
  they sort as in the other stores whatever the database's locale.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import select
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import ConnStatus
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from .._sqldb import durability_of, pg_conninfo, pg_power, without_password
from ..errors import ConfigError, InputValidationError, LeaseLost, NotFound, StoreError
from ..records import AuditEntry, Event, RunRecord, RunStatus
from ._base import UPDATABLE, Store, pick_fair
from ._group import Coalesce, GroupCommit, GroupWrite, NewRun
from ._identity import ID_MIGRATION, ID_ROW, drawn
from ._names import OBJECTS, PLACEMENT, Placement, placement_of
from ._pg_erase import PgErasure
from ._pg_governance import AUDIT_INSERT, NEXT_SEQS
from ._pg_listen import listen
from ._pg_numbers import PgNumbered, audit_row, end_statement
from ._pg_runs import (
    _CREATE_RUN,
    _EVENT_COLS,
    _RUN_COLS,
    CHANNEL,
    PgRuns,
    _create_events,
    _insert_events,
    _run,
    _run_params,
)
from ._pg_schema import MIGRATIONS

#: The channel that carries application events between processes.
EVENTS_CHANNEL = "podium_events"
#: NOTIFY payloads are limited to 8000 bytes; keep room for the topic.
MAX_EVENT_BYTES = 7000

#: Key of the advisory lock that serialises schema migrations (per database).
MIGRATION_LOCK_KEY = 0x706F6469756D0001  # "podium" + 1

_HELD = (RunStatus.PENDING.value, RunStatus.RUNNING.value)  # statuses in which a run keeps its owner
_UNFINISHED_SQL = "status IN ('pending', 'running', 'waiting')"
_GET_RUN = f"SELECT {_RUN_COLS} FROM runs WHERE id = %s"

_DEFAULT_PARAMS = {"connect_timeout": "10", "application_name": "podium"}


def _alive(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Whether an idle pooled connection still works, without a round trip: an idle connection's
    socket has nothing to read unless the server closed it (or sent a notice, which is harmless).
    Costs one poll() system call, so that a server restart does not fail one operation per pooled
    connection."""
    pgconn = conn.pgconn
    if pgconn.status != ConnStatus.OK:
        return False
    try:
        fd = pgconn.socket
        for _ in range(4):
            if hasattr(select, "poll"):
                poller = select.poll()
                poller.register(fd, select.POLLIN)
                readable = bool(poller.poll(0))
            else:  # Windows
                readable = bool(select.select([fd], [], [], 0)[0])
            if not readable:
                return pgconn.status == ConnStatus.OK
            # Read what came: a notice leaves the socket quiet; a terminated session sends an error
            # then end-of-file, on which this raises.
            pgconn.consume_input()
    except (OSError, ValueError, psycopg.Error):
        return False
    return False  # still talking while idle: do not trust it


def _one_line(exc: BaseException) -> str:
    """The error's message on one line, without the echoed statement of a server error."""
    primary = exc.diag.message_primary if isinstance(exc, psycopg.Error) else None
    text = " ".join((primary or str(exc)).split())
    return text.removeprefix("connection failed: ").removeprefix("connection is bad: ")


def _redact(url: str) -> str:
    """``url`` without its password (in the user-info part or as a ``password=`` parameter)."""
    url = re.sub(r"^([a-z]+://[^:/@?#]*):[^@/?#]*@", r"\1:***@", url)
    return re.sub(r"(?i)(\bpassword\s*=\s*)('[^']*'|[^\s&]*)", r"\1***", url)


#: The end of a new run's statement that carries an audit entry: whether the run is new, and if it
#: is, the entry's number (drawn in the same statement: no statement of its own in the round trip).
_CREATED_NUMBERED = " SELECT count(*), CASE WHEN count(*) > 0 THEN nextval('audit_seq') END FROM r"

# An append with an audit entry: statement, parameters before and after the entry's row, events,
# entry, and the run update's SET clause.
_Audited = tuple[str, list[Any], list[Any], Sequence[Event], AuditEntry, str | None]


class PostgresStore(PgRuns, PgNumbered, PgErasure, Store):
    """Store in a PostgreSQL database (see the module docstring).

    :param url: ``postgresql://user:password@host:port/database[?libpq-params]``.
    :param min_size: connections kept open.
    :param max_size: connections at most (per store instance, i.e. per engine process).
    :param auto_migrate: apply pending schema migrations in :meth:`open` (the default); with
        False, call :meth:`migrate` yourself.
    :param timeout: seconds an operation waits for a free connection before :class:`StoreError`.
    :param durability: ``power`` or ``crash`` (None: the ``durability`` setting); see the attribute.
    """

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 8,
        auto_migrate: bool = True,
        timeout: float = 30.0,
        durability: str | None = None,
    ) -> None:
        self.durability = durability_of(durability)
        """``power``: every connection's commits wait for their WAL flush, also where the server
        or the database turned ``synchronous_commit`` off; ``crash``: the server's setting."""
        self.url = url
        self._where = _redact(url)
        try:
            params = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise ConfigError(
                f"invalid PostgreSQL store URL {self._where!r}: {without_password(_one_line(exc), url)}. Use "
                "postgresql://user:password@host:5432/database, with a password's special characters "
                "percent-encoded (% is %25, a space %20, @ %40) (set by --db or $PODIUM_DB)"
            ) from exc
        for port in str(params.get("port") or "").split(","):
            if port and not port.strip().isdigit():
                raise ConfigError(
                    f"invalid PostgreSQL store URL {self._where!r}: port {port!r} is not a number. Use "
                    "postgresql://user:password@host:5432/database (set by --db or $PODIUM_DB)"
                )
        if not 1 <= min_size <= max_size:
            raise ConfigError(f"PostgresStore needs 1 <= min_size <= max_size, got {min_size} and {max_size}")
        self._params = params
        self._conninfo = pg_conninfo(url, params, **_DEFAULT_PARAMS)
        self._connect_timeout = (
            float(params.get("connect_timeout") or _DEFAULT_PARAMS["connect_timeout"]) or 10.0
        )
        self.min_size = min_size
        self.max_size = max_size
        self.auto_migrate = auto_migrate
        self.timeout = timeout
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]] | None = None
        self._listener: psycopg.AsyncConnection[TupleRow] | None = None
        self._open_lock = asyncio.Lock()
        self.group = GroupCommit(self.create_runs)
        """Starts made together share one transaction (see ``_group.py``)."""
        self._notify = Coalesce(self._notify_now)
        self.appends: GroupWrite[tuple[str, list[Any], Event], None] = GroupWrite(self._append_many)
        """Appends made at the same moment share one transaction (steps of many runs)."""
        self.audited: GroupWrite[_Audited, None] = GroupWrite(self._append_audited)
        self.reads: GroupWrite[str, RunRecord | None] = GroupWrite(self._get_runs)
        """So do appends with an audit entry (runs' ends), their entries placed in chain order."""

    def __repr__(self) -> str:
        return f"<PostgresStore {self._where}>"

    # -- connections --------------------------------------------------------------------------

    async def open(self) -> None:
        async with self._open_lock:
            if self._pool is not None:
                return
            fresh = await self._open()
            if self.auto_migrate or await self.schema_version() > 0:  # unmigrated: podium db upgrade
                await self.identify(fresh=fresh)

    async def _open(self) -> bool:
        """Connect, migrate and make the pool; whether the schema was created (a new store)."""
        fresh, conn = False, await self._connect()
        try:
            encoding = conn.info.parameter_status("server_encoding")
            if encoding and encoding.upper() not in ("UTF8", "UTF-8"):
                db = self._params.get("dbname", "?")
                raise ConfigError(
                    f"the PostgreSQL database of store {self._where} uses encoding {encoding}; Podium "
                    f'stores text as UTF-8. Create a UTF-8 database: CREATE DATABASE "{db}" '
                    "ENCODING 'UTF8' TEMPLATE template0"
                )
            if self.auto_migrate:
                try:
                    fresh = 1 in await self._migrate(conn, None)
                except pg_errors.InsufficientPrivilege as exc:
                    raise ConfigError(
                        f"cannot create Podium's tables in store {self._where}: {_one_line(exc)}. Run "
                        "'podium db upgrade' once as the database owner, or GRANT CREATE on the schema "
                        "to this user"
                    ) from exc
                except psycopg.Error as exc:
                    raise StoreError(
                        f"cannot apply Podium's schema migrations to store {self._where}: {_one_line(exc)}. "
                        "Is this database used by another application? Give Podium its own database, or "
                        "its own schema with ?options=-csearch_path%3Dpodium in the URL"
                    ) from exc
        finally:
            await conn.close()
        pool: AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]] = AsyncConnectionPool(
            self._conninfo,
            kwargs={"autocommit": True},
            min_size=self.min_size,
            max_size=self.max_size,
            timeout=self.timeout,
            name="podium",
            open=False,
            configure=pg_power if self.durability == "power" else None,
        )
        try:
            await pool.open(wait=True, timeout=self._connect_timeout + 5)
        except PoolTimeout as exc:
            await pool.close()
            raise ConfigError(
                f"cannot open connections to the PostgreSQL store {self._where}: {_one_line(exc)}"
            ) from exc
        self._pool = pool
        return fresh

    async def _connect(self) -> psycopg.AsyncConnection[TupleRow]:
        try:
            conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise ConfigError(self._connect_error(exc)) from exc
        if self.durability == "power":
            await pg_power(conn)
        return conn

    def _connect_error(self, exc: psycopg.Error) -> str:
        # libpq's first line per host tried says what failed; indented lines are its generic hints.
        lines = [line for line in str(exc).splitlines() if line.strip() and not line[0].isspace()]
        reason = without_password(_one_line(Exception("; ".join(lines))).rstrip("."), self.url)
        low = reason.lower()
        p = self._params
        host, port = p.get("host") or "localhost", p.get("port") or "5432"
        if "database" in low and "does not exist" in low:
            db = p.get("dbname", "")
            hint = (
                f'create the database first: createdb -h {host} -p {port} "{db}" (or CREATE DATABASE "{db}")'
            )
        elif "too many connections" in low or "connection slots are reserved" in low:
            hint = (
                "the server has no connection left for this user or database (max_connections, or a CONNECTION "
                "LIMIT on the role or database): each Podium process holds up to "
                f"{self.max_size + 2} (its pool, max_size={self.max_size}, and its listeners); raise the limit, "
                "stop idle clients, or put a pooler such as PgBouncer in front"
            )
        elif "not currently accepting connections" in low:
            hint = f'the database is closed to connections: ALTER DATABASE "{p.get("dbname", "")}" ALLOW_CONNECTIONS true'
        elif "password" in low or "authentication" in low or ("role" in low and "does not exist" in low):
            hint = (
                "check the user and password in the URL (postgresql://user:password@host/db), "
                "or set PGPASSWORD / ~/.pgpass"
            )
        elif "refused" in low or "timeout" in low or "no such file" in low or "could not translate" in low:
            hint = (
                f"is PostgreSQL running and accepting connections at {host}:{port}? "
                "Start it, or fix the host and port in the URL"
            )
        else:
            hint = "check the URL: postgresql://user:password@host:5432/database"
        return f"cannot connect to the PostgreSQL store {self._where} (set by --db or $PODIUM_DB): {reason}; {hint}"

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
        """A pooled connection; turns driver errors into :class:`StoreError`."""
        pool = self._pool
        if pool is None:
            raise StoreError(f"store {self._where} is not open; use 'async with' or await store.open()")
        try:
            for _ in range(self.max_size + 1):
                async with pool.connection() as conn:
                    if not _alive(conn):  # dropped while idle (server restart...): the pool replaces it
                        await conn.close()
                        continue
                    yield conn
                    return
            raise StoreError(f"cannot get a working connection to the PostgreSQL store {self._where}")
        except PoolTimeout as exc:
            raise StoreError(
                f"no connection to the PostgreSQL store {self._where} within {self.timeout:g}s "
                f"({_one_line(exc)}); is the server up and max_connections large enough?"
            ) from exc
        except psycopg.DataError as exc:  # a value it cannot hold (a NUL byte in text): the caller's mistake
            raise InputValidationError(f"PostgreSQL store {self._where} refused a value: {_one_line(exc)}") from exc
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store {self._where}: {_one_line(exc)}") from exc

    async def close(self) -> None:
        if self._pool is not None:
            await self._close_audit()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.close()

    # -- migrations ---------------------------------------------------------------------------

    async def schema_version(self) -> int:
        async with self._connection() as conn:
            return await self._schema_version(conn)

    async def migrate(self, target: int | None = None) -> list[int]:
        async with self._connection() as conn:
            applied = await self._migrate(conn, target)
        if target is None:  # the store's id is kept in its key-value table
            await self.identify(fresh=1 in applied)
        return applied

    async def placement(self) -> Placement:
        async with self._connection() as conn:
            return placement_of(await (await conn.execute(PLACEMENT, (list(OBJECTS),))).fetchone())

    @staticmethod
    async def _schema_version(conn: psycopg.AsyncConnection[TupleRow]) -> int:
        cur = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
        row = await cur.fetchone()
        if not row or not row[0]:
            return 0
        cur = await conn.execute("SELECT MAX(version) FROM schema_migrations")
        row = await cur.fetchone()
        return int(row[0] or 0) if row else 0

    async def _migrate(self, conn: psycopg.AsyncConnection[TupleRow], target: int | None) -> list[int]:
        pending = [(v, sql) for v, sql in MIGRATIONS if target is None or v <= target]
        if not pending or await self._schema_version(conn) >= pending[-1][0]:
            return []  # the common case: no lock taken
        applied = []
        for version, sql in pending:
            async with conn.transaction():
                # Serialise with other processes migrating the same database; the lock is released
                # at commit. Only then is it safe to create the bookkeeping table.
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    "version INTEGER PRIMARY KEY, "
                    "applied_at DOUBLE PRECISION NOT NULL DEFAULT extract(epoch FROM now()))"
                )
                if await self._schema_version(conn) >= version:  # another process got there first
                    continue
                await conn.execute(sql.encode())  # no parameters: may hold several statements
                if version == ID_MIGRATION:  # the id it drew, before anything else can change it
                    self.drawn_id = drawn(await (await conn.execute(ID_ROW)).fetchone())
                await conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            applied.append(version)
        return applied

    # -- runs and events ----------------------------------------------------------------------

    async def create_run(self, run: RunRecord, events: Sequence[Event] = (), *, audit: AuditEntry | None = None) -> bool:
        return await self.group.create_run(run, events, audit)

    async def create_runs(self, items: Sequence[NewRun]) -> list[bool]:
        if all(audit is None for _, _, audit in items):
            return await self._create_runs(items, None)
        async with self._chained_many() as place:  # the chain is held until the transaction committed
            return await self._create_runs(items, place)
        return []  # not reached (for type checkers: the context manager could swallow)

    async def _create_runs(
        self, items: Sequence[NewRun], place: Callable[[AuditEntry], AuditEntry] | None
    ) -> list[bool]:
        # One statement per run (its row and, if it is new, its events), pipelined by executemany
        # inside one transaction, with the audit log's next numbers fetched in the same round trip;
        # then the audit entries of the runs that are new, numbered and signed in chain order, and
        # the commit, in a second round trip: two round trips and one commit for the whole group.
        # A lone run with a number drawn ahead: one statement (``_pg_numbers.py``).
        created = [False] * len(items)
        async with self._connection() as conn:
            if place is not None and len(items) == 1 and items[0][2] is not None:
                done = await self._create_numbered(conn, *items[0], place)  # type: ignore[arg-type]
                if done is not None:
                    return [done]
            try:
                # BEGIN and COMMIT sent in the pipeline (a transaction() block syncs at its start and
                # end: a round trip more); on an error the pool rolls the connection back.
                async with conn.pipeline():
                    await conn.execute("BEGIN")
                    cursors = []
                    # by statement: runs with one event, with several, with none; numbered or not
                    by_sql: dict[tuple[str, bool], tuple[list[int], list[list[Any]]]] = {}
                    for i, (run, events, audit) in enumerate(items):
                        events_sql, events_params = _create_events(events)
                        part, params = by_sql.setdefault((events_sql, place is not None and audit is not None), ([], []))
                        part.append(i)
                        params.append([*_run_params(run), *events_params])
                    for (events_sql, numbered), (part, params) in by_sql.items():
                        cur = conn.cursor()
                        sql = _CREATE_RUN + events_sql + (_CREATED_NUMBERED if numbered else " SELECT count(*) FROM r")
                        await cur.executemany(sql, params, returning=True)
                        cursors.append((cur, part))
                    numbers = []
                    for cur, part in cursors:  # the first fetch ends the first round trip
                        for i in part:
                            row = await cur.fetchone()
                            created[i] = bool(row and row[0])
                            if created[i] and row is not None and len(row) > 1:
                                numbers.append(row[1])
                            cur.nextset()
                    new = [a for (_, _, a), c in zip(items, created, strict=True) if c and a is not None]
                    if new and place is not None:
                        self._numbers().drop()  # numbers were drawn: those kept would fail their guard
                        # the numbers, drawn statement by statement, go to the entries in chain order
                        await self._audit_insert_many(conn, new, place, sorted(numbers))
                    await conn.execute("COMMIT")
            except pg_errors.UniqueViolation as exc:  # two events with one seq
                raise LeaseLost(f"duplicate event sequence numbers in new run(s) {items[0][0].id}...") from exc
            except pg_errors.ForeignKeyViolation as exc:
                raise ValueError("events given with a new run belong to another run") from exc
        return created

    async def append(
        self, events: Sequence[Event], run_update: dict[str, Any] | None = None, *, audit: AuditEntry | None = None
    ) -> None:
        if not events:
            raise ValueError("append needs at least one event")
        insert, params = _insert_events(events)
        ctes, tail, tail_params, sets = [f"e AS ({insert})"], "SELECT 1", [], None
        if audit is not None:  # a run's end anchor, written by the same statement as its final state
            ctes.append(f"a AS ({AUDIT_INSERT})")
        if run_update:
            sets, values = self._update_sets(run_update)
            tail, tail_params = f"UPDATE runs SET {sets} WHERE id = %s", [*values, events[0].run_id]
        sql = insert if len(ctes) == 1 and not run_update else f"WITH {', '.join(ctes)} {tail}"
        if audit is None:
            return await self._append(sql, params + tail_params, events[0])
        await self.appends.landed(events[0].run_id)  # a step of this run still landing commits first
        await self.audited.submit((sql, params, tail_params, events, audit, sets))

    async def _append_audited(self, items: Sequence[_Audited]) -> list[None]:
        """Appends that carry an audit entry (runs' ends), several in one transaction: the entries
        numbered and signed in chain order (``_chained_many``); a failure moves the chain not at
        all and the group is written again one append at a time."""
        async with self._chained_many() as place, self._connection() as conn:
            numbers = self._numbers()
            if len(items) == 1 and (taken := numbers.take()) is not None:  # one round trip (_pg_numbers.py)
                sql, params, tail, events, audit, sets = items[0]
                e = place(audit)
                e.seq = taken[0]
                self._sign(e)
                guarded = end_statement(len(events), sets)
                if await self._numbered(conn, guarded, [*numbers.guard(taken), *params, *audit_row(e), *tail], events[0]):
                    return [None]
                e.seq = 0  # not written: the entry placed next takes its place in the chain
            # The numbers first (a sequence is not transactional: one unused leaves a gap), then
            # one statement per end: alone, it is its own transaction (one round trip); several
            # share one, pipelined. The chain is held until they committed.
            numbers.drop()  # those kept would fail their guard after this draw
            extra = numbers.extra()
            cur = await conn.execute(NEXT_SEQS, (len(items) + extra,))
            drawn = sorted(r[0] for r in await cur.fetchall())  # in chain order: the chain follows the log's order
            seqs = drawn[: len(items)]
            numbers.keep(drawn[len(items) :])  # the highest: for the next entries
            async with contextlib.AsyncExitStack() as stack:
                if len(items) > 1:  # pipelined; an error fails the group (then each is tried alone)
                    await stack.enter_async_context(conn.transaction())
                    await stack.enter_async_context(conn.pipeline())
                for (sql, params, tail, events, audit, _), seq in zip(items, seqs, strict=True):
                    e = place(audit)
                    e.seq = seq
                    self._sign(e)
                    await self._append(sql, params + audit_row(e) + tail, events[0], conn)
        return [None] * len(items)

    async def _append(
        self, sql: str, params: list[Any], ev: Event, conn: psycopg.AsyncConnection[TupleRow] | None = None
    ) -> None:
        # Autocommit: one statement is its own transaction. With one event and no update this is
        # a single INSERT + COMMIT, the hot path of every step. Appends made at the same moment
        # (many runs stepping at once) share one transaction (:meth:`_append_many`).
        if conn is None:
            await self.appends.submit((sql, params, ev), lands=True, key=ev.run_id)  # see GroupWrite.submit
            return
        try:
            await conn.execute(sql, params)
        except pg_errors.UniqueViolation as exc:
            raise LeaseLost(f"event {ev.seq} of run {ev.run_id} already written: another engine owns it") from exc
        except pg_errors.ForeignKeyViolation as exc:
            raise NotFound(f"run {ev.run_id} does not exist") from exc

    async def _append_many(self, items: Sequence[tuple[str, list[Any], Event]]) -> list[None]:
        """Appends of several runs in one transaction, their statements pipelined: one commit
        (one WAL flush) for the group. Any failure fails the group, which is then written one
        append at a time (each caller gets its own error: LeaseLost, NotFound)."""
        async with self._connection() as conn:
            if len(items) == 1:
                await self._append(*items[0], conn)
            else:
                async with conn.transaction(), conn.pipeline():
                    for sql, params, _ in items:
                        await conn.execute(sql, params)
        return [None] * len(items)

    @staticmethod
    def _update_sets(update: dict[str, Any]) -> tuple[str, list[Any]]:
        bad = set(update) - UPDATABLE
        if bad:
            raise ValueError(f"cannot update run fields {sorted(bad)}")
        values = dict(update)
        if values.get("status") is not None:
            values["status"] = RunStatus(values["status"]).value
        sets = ", ".join(f"{k} = %s" for k in values)
        if values.get("status") is not None and values["status"] not in _HELD:
            sets += ", owner = NULL, lease_expires_at = NULL"  # finished or waiting: nobody holds it
        return sets, list(values.values())

    async def get_run(self, run_id: str) -> RunRecord | None:
        return await self.reads.submit(run_id)  # reads at the same moment: one query
    async def _get_runs(self, run_ids: Sequence[str]) -> list[RunRecord | None]:
        async with self._connection() as conn:
            if len(run_ids) == 1:  # the usual read: no array to adapt
                cur = await conn.execute(_GET_RUN, (run_ids[0],))
            else:
                cur = await conn.execute(f"SELECT {_RUN_COLS} FROM runs WHERE id = ANY(%s::text[])", (list(run_ids),))
            found = {r.id: r for r in map(_run, await cur.fetchall())}
        return [dataclasses.replace(found[i]) if i in found else None for i in run_ids]

    async def list_runs(
        self,
        *,
        workflow: str | None = None,
        status: Sequence[RunStatus] | None = None,
        parent_run_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
        before: tuple[float, str] | None = None,
    ) -> list[RunRecord]:
        where: list[str] = []
        params: list[Any] = []
        if workflow is not None:
            where.append("workflow = %s")
            params.append(workflow)
        if status is not None and len(status) == 1:  # equality: the runs_status index gives the order
            where.append("status = %s")
            params.append(RunStatus(status[0]).value)
        elif status is not None:
            where.append("status = ANY(%s::text[])")
            params.append([RunStatus(s).value for s in status])
        if parent_run_id is not None:
            where.append("parent_run_id = %s")
            params.append(parent_run_id)
        if before is not None:
            where.append("(created_at, id) < (%s, %s)")
            params.extend(before)
        sql = f"SELECT {_RUN_COLS} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s"
        async with self._connection() as conn:
            cur = await conn.execute(sql, [*params, limit, offset])
            rows = await cur.fetchall()
        return [_run(r) for r in rows]

    async def load_events(self, run_id: str, *, after: int = 0) -> list[Event]:
        async with self._connection() as conn:
            cur = await conn.execute(
                f"SELECT {_EVENT_COLS} FROM events WHERE run_id = %s AND seq > %s ORDER BY seq",
                (run_id, after),
            )
            rows = await cur.fetchall()
        return [
            Event(
                run_id=r[0],
                seq=r[1],
                type=r[2],
                ts=r[3],
                step=r[4],
                iteration=r[5],
                index=r[6],
                attempt=r[7],
                data=r[8],
            )
            for r in rows
        ]

    # -- leases -------------------------------------------------------------------------------

    async def claim_runs(
        self,
        owner: str,
        *,
        lease_seconds: float,
        limit: int,
        now: float,
        run_ids: Sequence[str] | None = None,
        steal_from: Sequence[str] = (),
        queues: Sequence[str] | None = None,
        labels: Sequence[str] | None = None,
        queue_limits: dict[str, int] | None = None,
        due_by: float | None = None,
        skip: Sequence[str] = (),
        skip_versions: Sequence[tuple[str, str, str]] = (),
    ) -> list[RunRecord]:
        if run_ids is not None and not run_ids:
            return []
        where = (
            "(status IN ('pending', 'running') OR (status = 'waiting' AND (cancel_requested OR wake_at <= %s))) "
            "AND (owner IS NULL OR lease_expires_at < %s OR owner = ANY(%s::text[]))"
        )
        params: list[Any] = [now if due_by is None else due_by, now, list(steal_from)]
        if run_ids is not None:
            where += " AND id = ANY(%s::text[])"
            params.append(list(run_ids))
        if queues is not None:
            where += " AND queue = ANY(%s::text[])"
            params.append(list(queues))
        if skip:
            where += " AND NOT id = ANY(%s::text[])"
            params.append(list(skip))
        if skip_versions:  # the versions this engine could not load: one row each, however many runs
            where += (
                " AND NOT EXISTS (SELECT 1 FROM unnest(%s::text[], %s::text[], %s::text[]) AS s(w, v, r) "
                "WHERE s.w = runs.workflow AND s.v = runs.version AND s.r = coalesce(runs.workflow_ref, ''))"
            )
            params += [list(column) for column in zip(*skip_versions, strict=True)]
        window = limit * 2 + 50
        async with self._connection() as conn, conn.transaction():
            for q in sorted(queue_limits or {}):
                # Per-queue caps count held runs: serialise the claimers of a capped queue.
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"podium-queue:{q}",))
            cur = await conn.execute(
                "SELECT GROUPING(tenant), GROUPING(workflow), tenant, workflow, queue, count(*) FROM runs "
                f"WHERE owner IS NOT NULL AND lease_expires_at >= %s AND {_UNFINISHED_SQL} "
                "GROUP BY GROUPING SETS ((tenant), (workflow), (queue))",
                (now,),
            )
            counts: dict[str, dict[Any, int]] = {"tenant": {}, "workflow": {}, "queue": {}}
            for g_tenant, g_workflow, tenant, workflow, queue, n in await cur.fetchall():
                if not g_tenant:
                    counts["tenant"][tenant] = n
                elif not g_workflow:
                    counts["workflow"][workflow] = n
                else:
                    counts["queue"][queue] = n
            # Lock the candidates (skipping those another claimer holds); the ones not taken are
            # unlocked again at commit.
            cur = await conn.execute(
                f"SELECT id, queue, tenant, labels, priority, workflow FROM runs WHERE {where} "
                "ORDER BY priority DESC, created_at, id LIMIT %s FOR NO KEY UPDATE SKIP LOCKED",
                [*params, window],
            )
            rows = await cur.fetchall()
            ids = pick_fair(rows, limit=limit, labels=labels, queue_limits=queue_limits, held=counts)
            if not ids:
                return []
            cur = await conn.execute(
                "UPDATE runs SET owner = %s, lease_expires_at = %s, "
                "status = CASE WHEN status = 'waiting' THEN 'running' ELSE status END, "
                "wake_at = CASE WHEN status = 'waiting' THEN NULL ELSE wake_at END "
                f"WHERE id = ANY(%s::text[]) RETURNING {_RUN_COLS}",
                (owner, now + lease_seconds, ids),
            )
            by_id = {r[0]: _run(r) for r in await cur.fetchall()}
        return [by_id[rid] for rid in ids if rid in by_id]

    async def renew_leases(
        self, owner: str, run_ids: Sequence[str], *, lease_seconds: float, now: float
    ) -> set[str]:
        if not run_ids:
            return set()
        async with self._connection() as conn:
            cur = await conn.execute(
                "UPDATE runs SET lease_expires_at = %s WHERE owner = %s AND id = ANY(%s::text[]) RETURNING id",
                (now + lease_seconds, owner, list(run_ids)),
            )
            rows = await cur.fetchall()
        return {r[0] for r in rows}

    async def release_runs(self, owner: str, run_ids: Sequence[str]) -> None:
        if not run_ids:
            return
        async with self._connection() as conn:
            await conn.execute(
                "UPDATE runs SET owner = NULL, lease_expires_at = NULL WHERE owner = %s AND id = ANY(%s::text[])",
                (owner, list(run_ids)),
            )
            await conn.execute("SELECT pg_notify(%s, '')", (CHANNEL,))

    # -- signals and wake-ups -----------------------------------------------------------------

    cross_process_events = True

    async def publish(self, topic: str, payload: str) -> None:
        message = json.dumps([topic, payload])
        if len(message.encode()) > MAX_EVENT_BYTES:
            raise ConfigError(
                f"event {topic!r} is {len(message.encode()):,} bytes; events between processes are limited to "
                f"{MAX_EVENT_BYTES:,} bytes (PostgreSQL NOTIFY): store the data and send a reference to it"
            )
        async with self._connection() as conn:
            await conn.execute("SELECT pg_notify(%s, %s)", (EVENTS_CHANNEL, message))

    async def subscribe(self, callback: Callable[[str, str], None]) -> Callable[[], Awaitable[None]]:
        """LISTEN on :data:`EVENTS_CHANNEL` with a dedicated connection (connected again when the
        session ends: ``_pg_listen.py``) and a task that hands every notification to ``callback``."""
        return await listen(
            lambda: psycopg.AsyncConnection.connect(self._conninfo, autocommit=True), EVENTS_CHANNEL, self._where, callback
        )

    async def notify_work(self) -> None:
        await self._notify()  # a burst of calls sends one NOTIFY (after the calls asked)

    async def _notify_now(self) -> None:
        async with self._connection() as conn:
            await conn.execute("SELECT pg_notify(%s, '')", (CHANNEL,))

    async def wait_for_work(self, timeout: float) -> None:
        """LISTEN on :data:`CHANNEL` (one dedicated connection); return at the first NOTIFY or after
        ``timeout``. If listening fails, fall back to waiting out the timeout (polling)."""
        try:
            if self._listener is None or self._listener.closed:
                self._listener = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
                await self._listener.execute(f"LISTEN {CHANNEL}")
            woken = False
            async for _ in self._listener.notifies(timeout=timeout, stop_after=1):
                woken = True
                break
            if woken:  # a burst of notifications (many runs submitted) is one wake-up, one claim
                async for _ in self._listener.notifies(timeout=0):
                    pass
        except psycopg.Error:
            if self._listener is not None:
                await self._listener.close()
                self._listener = None
            await asyncio.sleep(timeout)

    # -- cancellation -------------------------------------------------------------------------

    async def request_cancel(self, run_id: str) -> None:
        async with self._connection() as conn:
            cur = await conn.execute(
                f"UPDATE runs SET cancel_requested = TRUE WHERE id = %s AND {_UNFINISHED_SQL}", (run_id,)
            )
            if cur.rowcount == 0:
                cur = await conn.execute("SELECT 1 FROM runs WHERE id = %s", (run_id,))
                if await cur.fetchone() is None:
                    raise NotFound(f"run {run_id} does not exist")

    async def cancel_requests(self, run_ids: Sequence[str]) -> list[str]:
        if not run_ids:
            return []
        async with self._connection() as conn:
            cur = await conn.execute(
                f"SELECT id FROM runs WHERE cancel_requested AND {_UNFINISHED_SQL} AND id = ANY(%s::text[])", (list(run_ids),)
            )
            found = {r[0] for r in await cur.fetchall()}
        return [rid for rid in run_ids if rid in found]

    async def unfinished_owners(self) -> list[str]:
        async with self._connection() as conn:
            cur = await conn.execute(
                f"SELECT DISTINCT owner FROM runs WHERE owner IS NOT NULL AND {_UNFINISHED_SQL}"
            )
            rows = await cur.fetchall()
        return sorted(r[0] for r in rows)
