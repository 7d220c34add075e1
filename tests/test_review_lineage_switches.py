"""Review of run lineage and leases (2026-12-06, seventh session): run budgets over children that
spend at the same moment, and a child run taken up again on its own (``podium runs resume``) while a
cancel switch holds the workflow of the run it works for. SQLite files and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from podium import Client, Policy, RunFailed, RunStatus, StepContext, Workflow, ai
from podium.governance.policy import SPEND
from podium.models import Response, Usage
from podium.models.testing import ScriptedModel


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/lineage.db"
    return str(request.getfixturevalue("pg_url"))


def _model(calls: list[str]) -> ScriptedModel:
    def answer(request: Any) -> Response:
        calls.append("call")
        return Response(text="done", usage=Usage(input_tokens=300, output_tokens=300, cost=0.03))

    return ScriptedModel(default=answer)


async def test_children_spending_at_once_count_every_call_and_overrun_by_one_call_each_at_most(url: str) -> None:
    """Checked and sound: a map step starts eight children at once under a parent whose run budget
    is 1,000 tokens, each child making two 600-token calls. The counter in the store loses no
    child's addition (it equals what the calls spent), and past the calls that reach the budget
    each child makes at most one more (checked before the others' additions landed), as
    docs/governance.md says: the overrun grows with the number of children running at once."""
    calls: list[str] = []
    child = Workflow("ops-helper")

    @child.step
    async def spend(ctx: StepContext, input):
        for i in range(2):
            await ai.llm(ctx, f"draft {i}", model=_model(calls))
        return input

    parent = Workflow("ops")

    @parent.step(map="input")
    async def fan(ctx: StepContext, input):
        return await ctx.run_workflow(child, input, name=f"helper-{input}")

    async with Client(url, workflows=[parent, child]) as c:
        await c.set_policy("ops", Policy(max_run_tokens=1000))
        with pytest.raises(RunFailed, match="reached a budget of a run above it"):
            await c.run(parent, list(range(8)))
        [run] = await c.list(workflow="ops")
        tokens = await c.store.kv_get(SPEND, f"run:{run.id}:tokens")
        cost = await c.store.kv_get(SPEND, f"run:{run.id}:cost")
    assert int(float(tokens)) == 600 * len(calls), (tokens, len(calls))
    assert float(cost) == pytest.approx(0.03 * len(calls))
    # two calls reach the budget; after that each of the eight may have one call under way
    assert 2 <= len(calls) <= 2 + 8, f"{len(calls)} calls: a child called again past the budget"


@pytest.mark.parametrize("over", ["parent", "itself"])
async def test_attack_a_run_taken_up_under_a_cancel_switch_parks_and_goes_on_once_cleared(url: str, over: str) -> None:
    """Failed before: a child run handed back in the middle of its payment step (its engine closed)
    was taken up on its own by another engine (``podium runs resume CHILD``) while a ``cancel``
    switch held the workflow of the run it works for (or its own): at its step boundary it was
    parked, as under a ``pause``, and the sweep cancels only the runs it drives, so it stayed
    parked, and went on to pay once the switch was cleared. A cancel switch cancels it now."""
    entered: list[int] = []
    hold = asyncio.Event()
    child = Workflow("helper")

    @child.step
    async def pay(ctx: StepContext, input):
        entered.append(1)
        await hold.wait()
        return "paid"

    parent = Workflow("payments")
    parent.subworkflow("delegate", child, input=lambda input: input)
    async with Client(url, workflows=[parent, child]) as a:
        run = await a.start(parent, None)
        for _ in range(2000):
            if entered:
                break
            await asyncio.sleep(0.01)
        assert entered == [1]
        [kid] = await a.list(parent_run_id=run.id)
    async with Client(url, workflows=[parent, child], recover=False) as b:
        await b.set_switch("workflow", "payments" if over == "parent" else "helper", mode="cancel", reason="fraud")
        await b.resume([kid.id])
        hold.set()
        await b.driving.settled(kid.id)
        done = await b.get(kid.id)
        assert done.status is RunStatus.CANCELLED, done
        await b.clear_switch("workflow", "payments" if over == "parent" else "helper")
        assert (await b.get(kid.id)).status is RunStatus.CANCELLED
        assert entered == [1], "the child's step ran again under a cancel switch"
        assert any(e.action == "run.cancel" and e.target == kid.id for e in await b.audit_log())
