"""The sandbox company: its systems running on free ports of 127.0.0.1, and the connectors that reach them.

One background thread runs one event loop that serves every HTTP system (uvicorn) and the SMTP
mailbox (aiosmtpd), so the sandbox works beside any caller: the ``podium demo`` command, a test, or a
workflow step started by ``podium run`` (see :func:`shared`).
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
from ._db import connect, rows, sample, seed


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
        An existing database is reused, not seeded again.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self._tmp = None if directory is not None else tempfile.TemporaryDirectory(prefix="podium-sandbox-")
        self.directory = Path(directory if directory is not None else self._tmp.name)  # type: ignore[union-attr]
        self.db = self.directory / "company.db"
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
            import starlette  # noqa: F401
            import uvicorn  # noqa: F401
        except ImportError as exc:
            raise ConfigError(f"the sandbox company needs {exc.name}: {install_hint('demo')}") from exc
        seed(self.db)
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
        from ._mailbox import start_smtp

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        servers: list[tuple[Any, socket.socket]] = []
        for name, make in SYSTEMS.items():
            sock = _bound()
            config = uvicorn.Config(make(self.db).app(), log_level="warning", access_log=False, lifespan="off")
            servers.append((uvicorn.Server(config), sock))
            self.urls[name] = f"http://127.0.0.1:{sock.getsockname()[1]}"
        smtp_sock = _bound()
        self.smtp = ("127.0.0.1", smtp_sock.getsockname()[1])
        smtp = await start_smtp(self.db, smtp_sock)
        tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in servers]
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
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what workflows and people see ------------------------------------------------------------
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
            return open_connector("sql", url=f"sqlite:///{self.db}", tables=["products", "purchase_orders"])
        known = ", ".join([*self.urls, "finance_mail", "company_db"])
        raise ConfigError(f"the sandbox has no system {name!r}; it has: {known}")

    def connectors(self) -> dict[str, Any]:
        """Every system's connector, by name (``Client(connectors=company.connectors())``)."""
        return {name: self.connector(name) for name in [*self.urls, "finance_mail", "company_db"] if name != "mailbox"}

    def received(self, system: str | None = None) -> list[dict[str, Any]]:
        """What the systems received (writes and mail), oldest first: system, operation, body."""
        with connect(self.db) as conn:
            found = rows(conn, "SELECT system, operation, body, at FROM received WHERE (? IS NULL OR system = ?) ORDER BY id", (system, system))
        return [{**r, "body": json.loads(r["body"])} for r in found]

    def mails(self) -> list[dict[str, Any]]:
        """The finance mailbox, newest first."""
        with connect(self.db) as conn:
            return rows(conn, "SELECT * FROM mails ORDER BY id DESC")


_shared: Sandbox | None = None
_shared_lock = threading.Lock()


def shared() -> Sandbox:
    """The sandbox of this process, started on first use, kept in ``.podium/sandbox`` (or
    ``$PODIUM_SANDBOX_DIR``) so that tickets and mail survive to the next process: this is what a
    scenario uses when it runs under ``podium run`` with no connector registered for a system."""
    global _shared
    with _shared_lock:
        if _shared is None:
            where = os.environ.get("PODIUM_SANDBOX_DIR") or os.path.join(".podium", "sandbox")
            _shared = Sandbox(where).start()
        return _shared


def use(sandbox: Sandbox | None) -> None:
    """Make ``sandbox`` this process's shared sandbox (``podium demo`` does, so that scenarios find it)."""
    global _shared
    with _shared_lock:
        _shared = sandbox
