"""Shared fixtures. ``store_url`` runs a test once per backend: memory, SQLite and PostgreSQL.

PostgreSQL tests use the server named by ``PODIUM_TEST_PG`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``); each test gets a fresh database. When no server
answers, they skip and say why.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# The MCP SDK binds sys.stderr as stdio_client's default errlog when it is first imported: import it
# now, not inside a CliRunner (which swaps sys.stderr for a stream without a fileno).
with contextlib.suppress(ImportError):
    import mcp.client.stdio  # noqa: F401

PG_URL = os.environ.get("PODIUM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_reason() -> str | None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'podium[postgres]')"
    try:
        from podium.storage import postgres  # noqa: F401
    except ImportError as exc:
        return f"the PostgreSQL store is not available: {exc}"
    host, port = "127.0.0.1", 5432
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError as exc:
        return f"no PostgreSQL server on {host}:{port} ({exc}); start it or set PODIUM_TEST_PG"
    return None


_PG_SKIP = _pg_reason()


@pytest.fixture(scope="session", autouse=True)
def _session_audit_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A key for module- and session-scoped fixtures too (set up before any per-test fixture), so
    no test ever writes ``~/.podium/audit.key``."""
    old = os.environ.get("PODIUM_AUDIT_KEY")
    os.environ["PODIUM_AUDIT_KEY"] = str(tmp_path_factory.mktemp("auditkey-session") / "audit.key")
    yield
    if old is None:
        os.environ.pop("PODIUM_AUDIT_KEY", None)
    else:
        os.environ["PODIUM_AUDIT_KEY"] = old


@pytest.fixture(autouse=True)
def audit_key(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test signs its audit log with a key of its own, outside its store and outside ``~``
    (the path is in ``PODIUM_AUDIT_KEY``, so CLI subprocesses use it too)."""
    path = str(tmp_path_factory.mktemp("auditkey") / "audit.key")
    monkeypatch.setenv("PODIUM_AUDIT_KEY", path)
    return path


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str:
    """A URL of a fresh, empty store of each kind."""
    kind = request.param
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/podium.db"
    if _PG_SKIP:
        pytest.skip(_PG_SKIP)
    return _fresh_pg_database(request)


@pytest.fixture
async def store(store_url: str) -> Any:
    """An open store of each kind (a test file may define its own ``store``)."""
    from podium import open_store

    s = open_store(store_url)
    await s.open()
    yield s
    await s.close()


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    """The URL of a fresh, empty PostgreSQL database (skips, saying why, when no server answers)."""
    if _PG_SKIP:
        pytest.skip(_PG_SKIP)
    return _fresh_pg_database(request)


@pytest.fixture
def pg_database(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Makes fresh PostgreSQL databases with extra ``CREATE DATABASE`` options; returns their URLs."""
    if _PG_SKIP:
        pytest.skip(_PG_SKIP)
    return lambda options="": _fresh_pg_database(request, options)


def _fresh_pg_database(request: pytest.FixtureRequest, options: str = "") -> str:
    import psycopg

    name = f"podium_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" {options}'.rstrip())

    def drop() -> None:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    request.addfinalizer(drop)
    base = PG_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"
