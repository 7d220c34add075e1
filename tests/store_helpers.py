"""Records the store tests build: a run, its first event."""

from __future__ import annotations

import time
from typing import Any

from podium import RunStatus
from podium.records import AuditEntry, Event, RunRecord


def new_run(rid: str, *, created: float, workflow: str = "wf", status: RunStatus = RunStatus.WAITING, **kw: Any) -> RunRecord:
    return RunRecord(id=rid, workflow=workflow, version="1", status=status, input="{}", created_at=created, **kw)


def started(rid: str, seq: int) -> Event:
    return Event(run_id=rid, seq=seq, type="run_started", ts=time.time())


def end_entry(rid: str) -> AuditEntry:
    """A run's ``run.end`` audit entry, as the engine writes it with the run's final state."""
    return AuditEntry(ts=2.0, actor="engine", action="run.end", target=rid)


def made_store(url: str) -> str:
    """``url``, after making its (empty) store: the CLI's read commands refuse a SQLite file that
    does not exist (a mistyped path must not read as an empty system)."""
    import asyncio

    from podium import open_store

    async def make() -> None:
        store = open_store(url)
        await store.open()
        await store.close()

    asyncio.run(make())
    return url


def versioned_flow(name: str, version: str) -> Any:
    """A one-step workflow ``name`` at ``version`` (adds one to its input): tests of runs whose
    version an engine cannot load."""
    from podium import Workflow

    wf = Workflow(name, version=version)

    @wf.step
    async def one(ctx: Any, input: Any) -> Any:
        return input + 1

    return wf


def sqlite_or_pg(request: Any, tmp_path: Any, name: str) -> str:
    """The store URL of a test parametrized over ``sqlite`` and ``postgres`` (its ``pg_url`` fixture)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/{name}.db"
    return str(request.getfixturevalue("pg_url"))
