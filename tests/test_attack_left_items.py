"""Security items the fourth session's reviews suspected and left open, each written as the attack
that succeeded on the code before its fix (docs/status.md, "Security items left by the reviews,
fixed (2026-12-06, fifth session)")."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from podium import Client, RunFailed, RunStatus, StepContext, Workflow, open_store

# -- kill switches: a child run is a new run ---------------------------------------------------------


def _parent_and_child(ran: list[str]) -> tuple[Workflow, Workflow]:
    child = Workflow("payout")

    @child.step
    async def pay(input):
        ran.append(f"paid {input}")
        return input

    parent = Workflow("month-end")
    parent.subworkflow("payouts", child, input=lambda input: input)

    @parent.step
    async def via_ctx(ctx: StepContext, payouts):
        return await ctx.run_workflow(child, payouts + 1, name="again")

    return parent, child


async def _children(c: Client, run_id: str) -> list[Any]:
    return list(await c.list(parent_run_id=run_id))


async def test_attack_a_child_of_a_switched_off_workflow_is_not_created(store_url: str) -> None:
    """The attack: an operator switches the ``payout`` workflow off; ``client.start`` refuses new
    payout runs, but a ``month-end`` run (not switched off) still created payout runs as children
    of its step (``client.run_child`` never asked ``check_startable``): they parked at their first
    step, but they existed, and a ``cancel`` switch let them be created too. Now a child of a
    paused workflow is not created: the parent waits at that step and creates it once the switch
    is cleared; under a ``cancel`` switch the parent's step fails, refused like a start."""
    shared = open_store(store_url) if store_url.startswith("memory") else store_url
    ran: list[str] = []
    parent, child = _parent_and_child(ran)
    async with Client(shared, workflows=[parent, child], poll_interval=0.02) as c:
        await c.set_switch("workflow", "payout", reason="bank incident")
        run = await c.start(parent, 10)
        for _ in range(500):
            if (await c.get(run.id)).status is RunStatus.WAITING:
                break
            await asyncio.sleep(0.01)
        assert (await c.get(run.id)).status is RunStatus.WAITING
        assert await _children(c, run.id) == [], "a run of a switched-off workflow was created as a child"
        assert ran == []
        assert await c.clear_switch("workflow", "payout") >= 1
        assert await c.result(run.id, timeout=30) == 11
        assert ran == ["paid 10", "paid 11"]
        assert len(await _children(c, run.id)) == 2

        await c.set_switch("workflow", "payout", mode="cancel", reason="stop payouts")
        refused = await c.start(parent, 20)
        with pytest.raises(RunFailed, match="switched off"):
            await refused.result()
        assert await _children(c, refused.id) == []
        assert ran == ["paid 10", "paid 11"]
