"""The sandbox company: its systems running on free ports of 127.0.0.1, and the connectors that reach them.

One background thread runs one event loop that serves every HTTP system (uvicorn), the SMTP
mailbox (aiosmtpd) and the relay of the company's event bus (``_events.py``), so the sandbox works
beside any caller: the ``podium demo`` command, a test, or a workflow step started by ``podium run``
(see :func:`shared`).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any

from ..errors import ConfigError, install_hint
from ._db import Database, connect, rows, sample


def _bound() -> socket.socket:
    """A listening socket on a free port of 127.0.0.1 (handed to the server: no port race)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class Sandbox:
    """A small company (CRM, support desk, marketing, ERP, finance mailbox) on 127.0.0.1.

    ::

        with Sandbox() as company:                      # seeded from the shipped sample data
            connectors = company.connectors()           # {"crm": openapi connector, ...}
            ...
            company.received()                          # what each system received

    :param directory: where its database lives; default a fresh temporary folder (removed on stop).
        An existing database is reused, not seeded again (see :func:`default_directory`).
    :param fresh: start from the sample data again, dropping what an earlier sandbox in ``directory``
        received.
    :param event_bus: ``nats://host:4222`` publishes the company's business events on NATS (default
        ``$PODIUM_EVENT_BUS``); without one they go on the bus of the client given to :meth:`attach`.
    :param database: the SQL database of every system: ``postgresql://user@host:5432/NAME`` or
        ``mysql+pymysql://user@host:3306/NAME`` (the database must exist; the sandbox creates its tables),
        default ``$PODIUM_SANDBOX_DB``, else the SQLite file ``company.db`` in ``directory``.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        fresh: bool = False,
        event_bus: str | None = None,
        database: str | None = None,
    ) -> None:
        self._tmp = None if directory is not None else tempfile.TemporaryDirectory(prefix="podium-sandbox-")
        self.directory = Path(directory if directory is not None else self._tmp.name)  # type: ignore[union-attr]
        try:
            self.db = open_database(self.directory, database)
        except BaseException:
            if self._tmp is not None:
                self._tmp.cleanup()
            raise
        self.fresh = fresh
        self.event_bus = event_bus or os.environ.get("PODIUM_EVENT_BUS") or None
        if self.event_bus is not None and not self.event_bus.startswith(("nats://", "tls://")):
            raise ConfigError(
                f"sandbox event bus {self.event_bus!r}: the bus is a nats:// URL (nats://127.0.0.1:4222), "
                "or none for the bus of the client the sandbox is attached to"
            )
        self.relay: Any = None
        self.urls: dict[str, str] = {}
        """System name -> base URL (``http://127.0.0.1:PORT``)."""
        self.smtp: tuple[str, int] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    # -- life cycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> Sandbox:
        """Seed the database (if new) and start every system; returns when all of them answer."""
        try:
            import aiosmtpd  # noqa: F401
            import sqlalchemy  # noqa: F401
            import starlette  # noqa: F401
            import uvicorn  # noqa: F401
        except ImportError as exc:
            raise ConfigError(f"the sandbox company needs {exc.name}: {install_hint('demo')}") from exc
        try:
            if self.fresh:
                self.db.reset()
            self.db.seed()
        except BaseException:
            self.stop()
            raise
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="podium-sandbox", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or self._error is not None:
            self.stop()
            raise ConfigError(f"the sandbox company did not start within {timeout:.0f} s: {self._error!r}")
        return self

    def _serve(self, ready: threading.Event) -> None:
        try:
            asyncio.run(self._main(ready))
        except BaseException as exc:  # reported to start()
            self._error = exc
            ready.set()

    async def _main(self, ready: threading.Event) -> None:
        import uvicorn

        from ._apps import SYSTEMS
        from ._events import Relay
        from ._mailbox import start_smtp

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.relay = Relay(self.db, self.event_bus)
        servers: list[tuple[Any, socket.socket]] = []
        for name, make in SYSTEMS.items():
            sock = _bound()
            system = make(self.db)
            system.notify = self.relay.wake
            config = uvicorn.Config(system.app(), log_level="warning", access_log=False, lifespan="off")
            servers.append((uvicorn.Server(config), sock))
            self.urls[name] = f"http://127.0.0.1:{sock.getsockname()[1]}"
        smtp_sock = _bound()
        self.smtp = ("127.0.0.1", smtp_sock.getsockname()[1])
        smtp = await start_smtp(self.db, smtp_sock, self.relay.wake)
        tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in servers]
        tasks.append(asyncio.create_task(self.relay.run(self._stop)))
        while not all(server.started for server, _ in servers):
            if any(t.done() for t in tasks):
                raise ConfigError("a sandbox system stopped while starting")
            await asyncio.sleep(0.02)
        ready.set()
        await self._stop.wait()
        for server, _ in servers:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        smtp.close()
        await smtp.wait_closed()

    def stop(self) -> None:
        """Stop every system (and remove the temporary folder, if the sandbox made one)."""
        if self._loop is not None and self._stop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(30)
        self._thread = None
        self.db.dispose()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what workflows and people see ------------------------------------------------------------
    async def attach(self, client: Any) -> None:
        """Put the company's business events on ``client``'s event bus, and record the events it
        carries from others (await it in the client's event loop). With a NATS ``event_bus`` the
        sandbox publishes there itself; give the client the same bus (``Client(event_bus=...)``)."""
        if self.relay is None:
            raise ConfigError("the sandbox is not running: start it first (Sandbox().start())")
        await self.relay.attach(client)

    async def detach(self) -> None:
        """Stop using the attached client's bus (before the client closes); events wait in the outbox."""
        if self.relay is not None:
            await self.relay.detach()

    def events(self) -> list[dict[str, Any]]:
        """The business events the company published, oldest first: topic, system, payload, at,
        sent_at (None while it waits for a bus)."""
        with connect(self.db) as conn:
            found = rows(conn, "SELECT topic, system, payload, at, sent_at FROM events ORDER BY id")
        return [{**r, "payload": json.loads(r["payload"])} for r in found]

    def connector(self, name: str) -> Any:
        """The connector a workflow uses for system ``name``: ``crm``, ``support_desk``, ``marketing``,
        ``erp`` (openapi, from the system's own OpenAPI document), ``finance_mail`` (smtp) or
        ``company_db`` (sql, read-mostly access to the catalogue and purchase orders)."""
        from ..connectors import open_connector

        if not self.urls:
            raise ConfigError("the sandbox is not running: start it first (Sandbox().start())")
        if name in self.urls:
            import httpx

            doc = httpx.get(self.urls[name] + "/openapi.json", timeout=30).json()
            return open_connector("openapi", spec=doc, base_url=self.urls[name], allow_private=True)
        if name == "finance_mail":
            assert self.smtp is not None
            company = sample()["company"]
            return open_connector(
                "smtp", host=self.smtp[0], port=self.smtp[1], sender=f"Podium <podium@{company['domain']}>",
                allowed_recipients=[f"@{company['domain']}"],
            )
        if name == "company_db":
            return open_connector("sql", url=self.db.url, tables=["products", "purchase_orders"])
        known = ", ".join([*self.urls, "finance_mail", "company_db"])
        raise ConfigError(f"the sandbox has no system {name!r}; it has: {known}")

    def connectors(self) -> dict[str, Any]:
        """Every system's connector, by name (``Client(connectors=company.connectors())``)."""
        return {name: self.connector(name) for name in [*self.urls, "finance_mail", "company_db"] if name != "mailbox"}

    def received(self, system: str | None = None) -> list[dict[str, Any]]:
        """What the systems received (writes and mail), oldest first: system, operation, body."""
        where, params = ("WHERE system = ?", (system,)) if system is not None else ("", ())
        with connect(self.db) as conn:
            found = rows(conn, f"SELECT system, operation, body, at FROM received {where} ORDER BY id", params)
        return [{**r, "body": json.loads(r["body"])} for r in found]

    def mails(self) -> list[dict[str, Any]]:
        """The finance mailbox, newest first."""
        with connect(self.db) as conn:
            return rows(conn, "SELECT * FROM mails ORDER BY id DESC")


def open_database(directory: Path, url: str | None = None) -> Database:
    """The company database: ``url``, else ``$PODIUM_SANDBOX_DB``, else ``company.db`` in ``directory``."""
    if url:
        return Database(url, source="the sandbox's database (Sandbox(database=...), podium demo --sandbox-db)")
    if os.environ.get("PODIUM_SANDBOX_DB"):
        return Database(os.environ["PODIUM_SANDBOX_DB"], source="$PODIUM_SANDBOX_DB")
    return Database(f"sqlite:///{directory / 'company.db'}")


def default_directory(db: str | None = None) -> Path:
    """Where the sandbox company keeps its database when no folder is named: ``$PODIUM_SANDBOX_DIR``,
    else a ``sandbox`` folder beside the SQLite store ``db`` (default: the store every command uses,
    so ``.podium/sandbox``), else ``.podium/sandbox``. ``podium demo``, ``podium run`` and
    ``podium serve`` all resolve it this way, so the dashboard shows what the demo's systems received."""
    if os.environ.get("PODIUM_SANDBOX_DIR"):
        return Path(os.environ["PODIUM_SANDBOX_DIR"])
    from ..storage import default_url

    url = (db or default_url()).split("?", 1)[0]
    path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else (url if "://" not in url else "")
    if path and path != ":memory:":
        return Path(path).parent / "sandbox"
    return Path(".podium") / "sandbox"


_shared: Sandbox | None = None
_shared_lock = threading.Lock()


def shared() -> Sandbox:
    """The sandbox of this process, started on first use, kept in :func:`default_directory` (the
    ``sandbox`` folder beside the store) so that tickets and mail survive to the next process: this is what a
    scenario uses when it runs under ``podium run`` with no connector registered for a system."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Sandbox(default_directory()).start()
        return _shared


def use(sandbox: Sandbox | None) -> None:
    """Make ``sandbox`` this process's shared sandbox (``podium demo`` does, so that scenarios find it)."""
    global _shared
    with _shared_lock:
        _shared = sandbox
