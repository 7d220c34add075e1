"""A step ``timeout`` shorter than a ``ctx.sleep`` (a YAML ``sleep``) fails the step when it is due.

The sleep parked the run (its end more than ``waits.HOLD`` away), so the attempt's timeout stopped
counting; the run was woken ``timers.EARLY`` before the sleep's end and replayed with a fresh
timeout: a 0.5 s timeout on a 9 s sleep failed the step after 4.5 s (2 s on 8 s: after 5 s)."""

from __future__ import annotations

import asyncio
import time

from podium import Client, Escalate, RunStatus, StepContext, Workflow
from podium.classifiers import Classification
from podium.engine import timers, waits


async def test_a_step_timeout_on_a_parked_sleep_fails_the_step_on_time(tmp_path):
    wf = Workflow("dozer")

    @wf.step(timeout=0.5)
    async def nap(ctx: StepContext) -> str:
        await ctx.sleep(9.0)
        return "slept"

    assert waits.HOLD < 9.0 and timers.EARLY == 5.0  # the sleep alone would park, and wake at 4 s
    async with Client(f"sqlite:///{tmp_path}/t.db", workflows=[wf], poll_interval=0.05) as client:
        t0 = time.monotonic()
        handle = await client.start(wf)
        run = await client.wait(handle.id, timeout=30)
        took = time.monotonic() - t0
    assert run.status is RunStatus.FAILED, run
    assert "timeout" in str(run.error), run.error
    # on time: before the parked run could have been woken (4 s), let alone the sleep's end (9 s)
    assert took < 3.5, f"the step's 0.5 s timeout failed it after {took:.1f}s"


async def test_a_step_timeout_on_a_parked_wait_for_fails_the_step_on_time(tmp_path):
    wf = Workflow("asker")

    @wf.step(timeout=0.5)
    async def ask(ctx: StepContext) -> str:
        return await ctx.wait_for("go", timeout=9.0, default="nobody answered")

    async with Client(f"sqlite:///{tmp_path}/t.db", workflows=[wf], poll_interval=0.05) as client:
        t0 = time.monotonic()
        handle = await client.start(wf)
        run = await client.wait(handle.id, timeout=30)
        took = time.monotonic() - t0
    assert run.status is RunStatus.FAILED and "timeout" in str(run.error), run
    assert took < 3.5, f"the step's 0.5 s timeout failed it after {took:.1f}s"


async def test_a_step_timeout_further_than_the_hold_still_bounds_a_parked_sleep(tmp_path):
    """A 6.5 s timeout on a 30 s sleep: the sleep parks the run, and the step must still fail when
    its timeout is due (it used to be woken 5 s before the sleep's end and counted 6.5 s afresh,
    so the sleep ended first and the step succeeded)."""
    wf = Workflow("long_dozer")

    @wf.step(timeout=6.5)
    async def nap(ctx: StepContext) -> str:
        await ctx.sleep(30.0)
        return "slept"

    assert waits.HOLD < 6.5  # the timeout is too far away to be held in memory from the start
    async with Client(f"sqlite:///{tmp_path}/t.db", workflows=[wf], poll_interval=0.05) as client:
        t0 = time.monotonic()
        handle = await client.start(wf)
        run = await client.wait(handle.id, timeout=60)
        took = time.monotonic() - t0
    assert run.status is RunStatus.FAILED, run
    assert "timeout" in str(run.error) and "6.5" in str(run.error), run.error
    assert took < 25, f"the step's 6.5 s timeout failed it only after {took:.1f}s"


async def test_a_restarted_engine_counts_the_step_timeout_from_the_attempt_s_start(tmp_path):
    """The engine that parked the step stops; another takes the run when its timer is near: the
    attempt's start is in the log, so the timeout is not counted afresh by the new engine."""
    wf = Workflow("long_asker")

    @wf.step(timeout=6.5)
    async def ask(ctx: StepContext) -> str:
        return await ctx.wait_for("go", timeout=30.0, default="nobody answered")

    url = f"sqlite:///{tmp_path}/t.db"
    async with Client(url, workflows=[wf], poll_interval=0.05) as client:
        t0 = time.monotonic()
        handle = await client.start(wf)
        while (await client.get(handle.id)).status is not RunStatus.WAITING:  # parked, then stopped
            assert time.monotonic() - t0 < 30, "the run never parked"
            await asyncio.sleep(0.02)
    async with Client(url, workflows=[wf], poll_interval=0.05) as client:
        run = await client.wait(handle.id, timeout=60)
        took = time.monotonic() - t0
    assert run.status is RunStatus.FAILED and "timeout" in str(run.error), run
    assert took < 25, f"the step's 6.5 s timeout failed it only after {took:.1f}s"


async def test_a_step_timeout_does_not_cut_short_the_person_its_escalation_asks(tmp_path):
    """The timeout bounds the step's function; the escalation after it is a person's decision and
    waits its own SLA. A 1 s timeout on a step whose output goes to a person must not fail the
    step while the person reads it (it did when the timeout fell within 5.5 s of the question)."""
    wf = Workflow("unsure")

    @wf.step(timeout=1.0, escalate=Escalate(below=0.8, timeout=3600))
    async def classify(input) -> Classification:
        return Classification(label="billing", confidence=0.4)

    out = await _approved_after_the_timeout(tmp_path, wf)
    assert out.label == "billing"


async def test_a_step_timeout_does_not_cut_short_an_approval_the_step_asks_for(tmp_path):
    """An approval asked inside the step with an SLA of an hour: a person's decision keeps its own
    SLA, the step's 1 s timeout bounds its work (the wait was held to the timeout and failed)."""
    wf = Workflow("asks_a_person")

    @wf.step(timeout=1.0)
    async def pay(ctx: StepContext) -> str:
        decision = await ctx.approval(title="pay 120 EUR?", timeout=3600)
        return "paid" if decision["approved"] else "not paid"

    assert await _approved_after_the_timeout(tmp_path, wf) == "paid"


async def _approved_after_the_timeout(tmp_path, wf: Workflow):
    """Start ``wf`` (its step's timeout 1 s), let the person it asks read for 2 s, check the run is
    still going, approve, and return the run's output."""
    async with Client(f"sqlite:///{tmp_path}/t.db", workflows=[wf], poll_interval=0.05) as client:
        t0 = time.monotonic()
        handle = await client.start(wf, {})
        while not (asked := await client.approvals(run_id=handle.id)):
            assert time.monotonic() - t0 < 30, "the step never asked a person"
            await asyncio.sleep(0.02)
        await asyncio.sleep(max(0.0, t0 + 2.0 - time.monotonic()))  # the person reads past the timeout
        assert not (await client.get(handle.id)).status.finished
        await client.decide(handle.id, asked[0]["name"], approve=True)
        return await client.result(handle.id, timeout=30)


async def test_attack_a_step_started_event_edited_in_the_store_fails_the_run_cleanly(tmp_path):
    """The logged end of a parked attempt's timeout, edited in the SQLite file to a value that is
    not a number (or a later time), must not crash the engine that takes the run over: the run's
    history no longer matches its audit anchors, so the run fails, saying so."""
    import sqlite3

    wf = Workflow("edited_asker")

    @wf.step(timeout=6.5)
    async def ask(ctx: StepContext) -> str:
        return await ctx.wait_for("go", timeout=30.0, default="nobody answered")

    url = f"sqlite:///{tmp_path}/t.db"
    async with Client(url, workflows=[wf], poll_interval=0.05) as client:
        t0 = time.monotonic()
        handle = await client.start(wf)
        while (await client.get(handle.id)).status is not RunStatus.WAITING:
            assert time.monotonic() - t0 < 30, "the run never parked"
            await asyncio.sleep(0.02)
    db = sqlite3.connect(tmp_path / "t.db")
    with db:
        changed = db.execute(
            "UPDATE events SET data = ? WHERE run_id = ? AND type = 'step_started'", ('{"until": "later"}', handle.id)
        ).rowcount
    db.close()
    assert changed == 1
    async with Client(url, workflows=[wf], poll_interval=0.05) as client:
        await client.signal(handle.id, "go", "yes")
        run = await client.wait(handle.id, timeout=60)
    assert run.status is RunStatus.FAILED, run
