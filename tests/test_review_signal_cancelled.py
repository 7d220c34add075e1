"""A signal sent by a caller that is cancelled (``asyncio.wait_for``, a request that went away)
while this engine takes up the run it woke, once the claim has committed and before the run is
driven. PostgreSQL (every query yields; SQLite's do not). As tests/test_review_wait_cancelled.py:
the moment is made by a transaction of the test holding the events table."""

from __future__ import annotations

import asyncio
import json

import psycopg
import pytest
from paused_workers import waiting_on_locks

from podium import Client, RunStatus, StepContext, Workflow

wf = Workflow("cancelled-signal")


@wf.step
async def ask(ctx: StepContext, input: object) -> object:
    return await ctx.wait_for("go")


async def test_a_signal_cancelled_while_it_takes_up_the_run_leaves_the_run_driven_or_free(pg_url: str) -> None:
    """Failed before: the run stayed claimed by the engine (status running, its lease renewed by
    nobody) and driven by none; a wait after it never ended."""
    async with Client(pg_url, workflows=[wf]) as a:
        run = await a.start(wf, "x")
        await a.driving.settled(run.id)
        assert (await a.get(run.id)).status is RunStatus.WAITING
        hold = await psycopg.AsyncConnection.connect(pg_url)
        try:
            await hold.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            sending = asyncio.ensure_future(a.signal(run.id, "go", "now"))
            await waiting_on_locks(pg_url, "the take-up never waited behind the held events table")
            with psycopg.connect(pg_url, autocommit=True) as conn:
                row = conn.execute("SELECT owner, status FROM runs WHERE id = %s", (run.id,)).fetchone()
            assert row == (a.owner, "running"), row  # claimed, not yet driven
            sending.cancel()
            await asyncio.wait({sending})
        finally:
            await hold.rollback()
            await hold.close()
        with pytest.raises(asyncio.CancelledError):
            sending.result()
        done = await a.wait(run.id, timeout=10)
        assert done.status is RunStatus.COMPLETED, done
        assert json.loads(done.output or "null") == "now"  # the signal's payload, delivered once


async def test_a_signal_cancelled_while_it_takes_up_the_run_is_still_audited(pg_url: str, audit_key: str) -> None:
    """The run goes on with the signal (its take-up is shielded), so the signal is in the audit log
    all the same. Failed before: ``run.signal`` was recorded after the take-up, and a caller
    cancelled during it left a run that acted on a signal no audit entry records."""
    async with Client(pg_url, workflows=[wf]) as a:
        run = await a.start(wf, "x")
        await a.driving.settled(run.id)
        hold = await psycopg.AsyncConnection.connect(pg_url)
        try:
            await hold.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            sending = asyncio.ensure_future(a.signal(run.id, "go", "now"))
            await waiting_on_locks(pg_url, "the take-up never waited behind the held events table")
            sending.cancel()
            await asyncio.wait({sending})
        finally:
            await hold.rollback()
            await hold.close()
        done = await a.wait(run.id, timeout=10)
        assert json.loads(done.output or "null") == "now"
        signals = [e for e in await a.store.audit_for(run.id) if e.action == "run.signal"]
        assert [(e.details().get("name"), e.details().get("delivered")) for e in signals] == [("go", True)]
