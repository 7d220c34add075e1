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
