"""Helpers of the tests that pause and kill real worker processes (SIGSTOP, SIGKILL), read what
their steps did from a log file the workflows append to (``$REVIEW_LOG``), or hold a PostgreSQL
lock and wait until the engine is seen waiting behind it."""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType

import pytest

#: Put before every workflows module :func:`load_flows` writes: its steps' ``note(what)`` appends
#: ``what`` and the process's pid to ``$REVIEW_LOG`` (one O_APPEND write), read back by :func:`step_log`.
NOTE = """import os as _os


def note(what: str) -> None:
    fd = _os.open(_os.environ["REVIEW_LOG"], _os.O_WRONLY | _os.O_APPEND | _os.O_CREAT, 0o644)
    try:
        _os.write(fd, f"{what} {_os.getpid()}\\n".encode())
    finally:
        _os.close(fd)


"""


def load_flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str) -> ModuleType:
    """Write the workflows' module ``name`` to ``tmp_path`` (the workers import it from there), with
    :data:`NOTE` before it, point its step log at ``tmp_path/steps.log``, and import it here too."""
    (tmp_path / f"{name}.py").write_text(NOTE + text)
    monkeypatch.setenv("REVIEW_LOG", str(tmp_path / "steps.log"))
    spec = importlib.util.spec_from_file_location(name, tmp_path / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def proc_state(pid: int) -> str:
    """The process's state letter from /proc (``T``: stopped, ``S``: sleeping...)."""
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]


async def until(what: str, check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    """Poll ``check`` until it is true (a state another process reaches), failing after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def step_log(tmp_path: Path) -> list[tuple[str, int]]:
    """(step, pid) of every step call the workflows logged, in order."""
    path = tmp_path / "steps.log"
    if not path.exists():
        return []
    return [(line.split()[0], int(line.split()[1])) for line in path.read_text().splitlines()]


async def waiting_on_locks(url: str, what: str, n: int = 1, timeout: float = 30.0) -> None:
    """Until ``n`` sessions of the PostgreSQL database ``url`` names wait for a lock (seen in
    ``pg_stat_activity``), failing with ``what`` after ``timeout``."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    deadline = time.monotonic() + timeout
    while True:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'", (name,)
            ).fetchone()
        if row and row[0] >= n:
            return
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)
