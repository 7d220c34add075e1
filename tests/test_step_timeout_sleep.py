"""A step ``timeout`` shorter than a ``ctx.sleep`` (a YAML ``sleep``) fails the step when it is due.

The sleep parked the run (its end more than ``waits.HOLD`` away), so the attempt's timeout stopped
counting; the run was woken ``timers.EARLY`` before the sleep's end and replayed with a fresh
timeout: a 0.5 s timeout on a 9 s sleep failed the step after 4.5 s (2 s on 8 s: after 5 s)."""

from __future__ import annotations

import time

from podium import Client, RunStatus, StepContext, Workflow
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
