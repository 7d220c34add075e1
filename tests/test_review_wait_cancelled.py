"""A wait for a woken parked run (``Client.wait``: ``worker.wait_on`` takes it up) cancelled by its
caller (``asyncio.wait_for``, a request that went away, a step's timeout) once the claim has
committed and before the run is driven. PostgreSQL (every query yields; SQLite's do not).

The moment is made, not waited for: a transaction of the test holds the events table, so the
engine's take-up, its claim committed, waits in its read of the run's log (seen in
``pg_stat_activity``); then the wait is cancelled and the table let go."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from paused_workers import waiting_on_locks

from podium import Client, RunStatus, StepContext, Workflow

wf = Workflow("cancelled-wait")


@wf.step
async def ask(ctx: StepContext, input: object) -> object:
    return await ctx.wait_for("go")


async def _blocked(url: str) -> None:
    await waiting_on_locks(url, "the take-up never waited behind the held events table")


async def test_a_wait_cancelled_while_it_takes_up_a_woken_run_leaves_the_run_driven_or_free(pg_url: str) -> None:
    """Failed before: the run stayed claimed by the engine (status running, its lease renewed by
    nobody) and driven by none; a wait after it never ended."""
    async with Client(pg_url, workflows=[wf]) as a, Client(pg_url, workflows=[wf], execute=False) as b:
        run = await a.start(wf, "x")
        await a.driving.settled(run.id)
        assert (await a.get(run.id)).status is RunStatus.WAITING
        assert await b.signal(run.id, "go", "now")  # woken elsewhere: wake_at due, nobody drives it
        hold = await psycopg.AsyncConnection.connect(pg_url)
        try:
            await hold.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            waiting = asyncio.ensure_future(a.wait(run.id))
            await _blocked(pg_url)
            with psycopg.connect(pg_url, autocommit=True) as conn:
                row = conn.execute("SELECT owner, status FROM runs WHERE id = %s", (run.id,)).fetchone()
            assert row == (a.owner, "running"), row  # claimed, not yet driven
            waiting.cancel()
            await asyncio.wait({waiting})
        finally:
            await hold.rollback()
            await hold.close()
        with pytest.raises(asyncio.CancelledError):
            waiting.result()
        done = await a.wait(run.id, timeout=10)
        assert done.status is RunStatus.COMPLETED, done
