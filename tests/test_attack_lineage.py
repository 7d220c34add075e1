"""Kill switches over a run's lineage: the gaps the sixth session's reviews suspected (docs/status.md,
"Attacker review of the sixth session's diff", "Suspected"), each written as the attack that
succeeded on the code before its fix. A child run works for the runs above it, so their workflows'
switches hold it (:func:`podium.engine.lineage.parent_workflows`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from podium import Client, ConfigError, RunFailed, RunStatus, StepContext, Workflow, open_store
from podium.engine.lineage import MAX_NESTING


def _shared(store_url: str) -> Any:
    return open_store(store_url) if store_url.startswith("memory") else store_url


async def _status_in(c: Client, run_id: str, *statuses: RunStatus, tries: int = 1000) -> RunStatus:
    for _ in range(tries):
        status = (await c.get(run_id)).status
        if status in statuses:
            return status
        await asyncio.sleep(0.01)
    return (await c.get(run_id)).status


# -- a lineage deeper than the engine reads ---------------------------------------------------------


def _nesting(ran: list[str], at_bottom: asyncio.Event, go: asyncio.Event) -> tuple[Workflow, Workflow]:
    """``payroll`` starts ``nest``, which starts itself ``input`` levels deep; the run at the bottom
    checks, waits for ``go``, then pays."""
    nest = Workflow("nest")

    @nest.step
    async def down(ctx: StepContext, input):
        level, to = input
        if level < to:
            return await ctx.run_workflow(nest, [level + 1, to], name="down")
        ran.append(f"checked at {level}")
        at_bottom.set()
        await go.wait()
        return level

    @nest.step
    async def pay(input, down):
        if input[0] == input[1]:  # the run at the bottom pays; those above pass its result up
            ran.append(f"paid at {down}")
        return down

    top = Workflow("payroll")

    @top.step
    async def start(ctx: StepContext, input):
        return await ctx.run_workflow(nest, [1, input], name="nest")

    return top, nest


async def test_attack_a_run_nested_deeper_than_its_lineage_is_read_escapes_the_top_workflows_switch(store_url: str) -> None:
    """The attack: a ``payroll`` run starts ``nest``, which starts itself again and again; the
    engine read at most 64 parent runs' workflows, so the run 65 levels under ``payroll`` did not
    know it worked for ``payroll``: with ``payroll`` paused (an incident), it went on and paid. Now
    runs nest at most ``MAX_NESTING`` (64) levels: the child that would be the 65th level is not
    started, the step that asked fails saying so (the depth, and the run it was asked by), and
    nothing is paid; a run at level 64 is still held by ``payroll``'s switch."""
    ran: list[str] = []
    at_bottom, go = asyncio.Event(), asyncio.Event()
    top, nest = _nesting(ran, at_bottom, go)
    async with Client(_shared(store_url), workflows=[top, nest], poll_interval=0.05) as c:
        run = await c.start(top, MAX_NESTING + 1)
        reached = asyncio.ensure_future(at_bottom.wait())
        done, _ = await asyncio.wait({reached, asyncio.ensure_future(c.wait(run.id, timeout=120))}, timeout=120,
                                     return_when=asyncio.FIRST_COMPLETED)
        if reached in done:  # the attack's way: the run at level 65 exists; pause payroll and let it go on
            await c.set_switch("workflow", "payroll", reason="payroll incident")
            go.set()
            await asyncio.sleep(1.0)
            await c.clear_switch("workflow", "payroll")
        reached.cancel()
        assert not [r for r in ran if r.startswith("paid")], f"a run nested under a paused payroll paid: {ran}"
        with pytest.raises(RunFailed) as failed:
            await c.result(run.id, timeout=120)
        message = str(failed.value)
        assert f"nested {MAX_NESTING} levels deep" in message and f"at most {MAX_NESTING}" in message, message
        assert ran == []

        # the deepest run allowed is held by the switch on the workflow at the top
        ran.clear()
        at_bottom.clear()
        go.clear()
        run = await c.start(top, MAX_NESTING)
        await asyncio.wait_for(at_bottom.wait(), 120)
        await c.set_switch("workflow", "payroll", reason="payroll incident")
        go.set()

        async def parked() -> bool:
            return any(r.status is RunStatus.WAITING for r in await c.list(workflow="nest", limit=1000))

        for _ in range(1000):
            if ran[1:] or await parked():
                break
            await asyncio.sleep(0.01)
        assert ran == [f"checked at {MAX_NESTING}"], "the run at the deepest level allowed paid under the paused payroll"
        assert await parked()
        assert await c.clear_switch("workflow", "payroll") >= 1
        assert await c.result(run.id, timeout=120) == MAX_NESTING
        assert ran == [f"checked at {MAX_NESTING}", f"paid at {MAX_NESTING}"]


def _refunds(ran: list[str]) -> tuple[Workflow, Workflow]:
    child = Workflow("refund-payout")

    @child.step
    async def check(input):
        return input

    @child.step
    async def pay(check):
        ran.append(f"paid {check}")
        return check

    parent = Workflow("refunds")
    parent.subworkflow("payout", child, input=lambda input: input)
    return parent, child


async def test_attack_a_long_chain_of_forks_escapes_the_switch_its_original_is_held_by(store_url: str) -> None:
    """The attack: a fork works for whoever the run it was forked from worked for, but the engine
    followed at most 63 forks back: with ``refunds`` paused, the 64th fork in a chain of forks of
    a ``refund-payout`` child (each forked from the one before, at ``pay``) paid. Now a chain of
    forks is followed ``MAX_NESTING`` (64) forks back, so that fork parks; forking it again (the
    65th) is refused, saying so and naming a run to fork instead."""
    ran: list[str] = []
    parent, child = _refunds(ran)
    async with Client(_shared(store_url), workflows=[parent, child], poll_interval=0.05) as c:
        run = await c.start(parent, 3)
        assert await c.result(run.id, timeout=30) == 3
        [kid] = await c.list(parent_run_id=run.id)
        last = kid.id
        for _ in range(MAX_NESTING - 1):
            fork = await c.fork(last, "pay")
            assert await c.result(fork.id, timeout=30) == 3
            last = fork.id
        assert len(ran) == MAX_NESTING
        await c.set_switch("workflow", "refunds", reason="refund incident")
        fork = await c.fork(last, "pay")  # the 64th fork in the chain
        status = await _status_in(c, fork.id, RunStatus.WAITING, RunStatus.COMPLETED)
        assert status is RunStatus.WAITING, "the 64th fork of a paused workflow's child paid"
        assert len(ran) == MAX_NESTING
        with pytest.raises(ConfigError, match=f"forks of forks at most {MAX_NESTING} deep") as refused:
            await c.fork(fork.id, "pay")
        assert kid.id in str(refused.value)
        assert await c.clear_switch("workflow", "refunds") >= 1
        assert await c.result(fork.id, timeout=30) == 3


# -- a cancel switch on a parent's workflow ---------------------------------------------------------


def _starting_a_child(ran: list[str], started: asyncio.Event, go: asyncio.Event) -> tuple[Workflow, Workflow, Workflow]:
    """``month-end`` (under ``close``) has a step that, once ``go`` is set, starts a ``payout`` run."""
    child = Workflow("payout")

    @child.step
    async def pay(input):
        ran.append(f"paid {input}")
        return input

    parent = Workflow("month-end")

    @parent.step
    async def prepare(ctx: StepContext, input):
        started.set()
        await go.wait()
        return await ctx.run_workflow(child, input, name="payout")

    top = Workflow("close")
    top.subworkflow("month", parent, input=lambda input: input)
    return top, parent, child


@pytest.mark.parametrize("switched", ["month-end", "close"])
async def test_attack_a_cancel_switch_on_a_parent_workflow_does_not_stop_a_child_from_starting(
    store_url: str, switched: str
) -> None:
    """The attack: an operator sets a ``cancel`` switch on ``month-end`` (or on ``close``, the
    workflow of the run above it) from another process. This engine read the switch (its sweep
    refreshes the switches, then cancels the runs they stop); in between, a ``month-end`` step
    started a ``payout`` child: ``run_child`` asked ``check_startable`` about ``payout`` only, so
    the child was created under a cancel switch over its parents (and, this engine not cancelling
    yet, the parent waited for it). Now a child is not started when a cancel switch is over its
    workflow or any workflow of its lineage: the step fails, naming the switch (as a start is
    refused); a pause switch parks the step instead (as before)."""
    shared = _shared(store_url)
    ran: list[str] = []
    started, go = asyncio.Event(), asyncio.Event()
    top, parent, child = _starting_a_child(ran, started, go)
    async with Client(shared, workflows=[top, parent, child], poll_interval=60) as c:
        run = await c.start(top, 5)
        await asyncio.wait_for(started.wait(), 30)
        async with Client(shared, execute=False) as operator:
            await operator.set_switch("workflow", switched, mode="cancel", reason="stop the close")
        await c.governance.refresh()  # read by this engine, which has not cancelled its runs yet
        go.set()
        [month] = await c.list(parent_run_id=run.id)
        final = await _status_in(c, month.id, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.COMPLETED, tries=500)
        assert await c.list(parent_run_id=month.id) == [], "a child was started under a cancel switch over its parent"
        assert ran == []
        assert final is RunStatus.FAILED
        error = (await c.get(month.id)).error or ""
        assert "sub-workflow 'payout' not started" in error and f"workflow {switched!r}" in error, error
        assert "switched off (stop the close" in error and "podium killswitch clear" in error, error
        await c.clear_switch("workflow", switched)


async def test_attack_a_fork_of_a_child_is_made_under_a_cancel_switch_over_its_parent(store_url: str) -> None:
    """The same for a fork: with ``refunds`` under a ``cancel`` switch, forking one of its finished
    ``refund-payout`` children made a new run (``check_startable`` asked about ``refund-payout``
    only), which the switch then cancelled. Now the fork is refused, naming the switch; a ``pause``
    switch still lets it be made, parked (``test_attack_a_fork_of_a_child_run_escapes_its_parents_switch``)."""
    from podium import KillSwitchActive

    ran: list[str] = []
    parent, child = _refunds(ran)
    async with Client(_shared(store_url), workflows=[parent, child], poll_interval=0.05) as c:
        run = await c.start(parent, 4)
        assert await c.result(run.id, timeout=30) == 4
        [kid] = await c.list(parent_run_id=run.id)
        await c.set_switch("workflow", "refunds", mode="cancel", reason="stop refunds")
        with pytest.raises(KillSwitchActive, match=r"workflow 'refunds' \(of a run it works for\) is switched off \(stop refunds"):
            await c.fork(kid.id, "pay")
        assert [r.id for r in await c.list(workflow="refund-payout")] == [kid.id]
        assert ran == ["paid 4"]
        await c.clear_switch("workflow", "refunds")
