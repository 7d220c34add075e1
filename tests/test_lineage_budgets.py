"""A run's budget covers the runs it starts (docs/governance.md, "Budgets"). ``max_run_tokens`` and
``max_run_cost`` bound what one run spends on models; a run spends through its child runs too (a
sub-workflow, ``ctx.run_workflow``, a goal's plan), so their spending counts against its budget,
at any depth. Each test failed on the code before: a child's spending was counted against no
budget but its own workflow's."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from podium import Client, Policy, RunFailed, RunStatus, StepContext, Workflow, ai, open_store
from podium.models import Response, Usage
from podium.models.testing import ScriptedModel


def _shared(store_url: str) -> Any:
    return open_store(store_url) if store_url.startswith("memory") else store_url


def _model(calls: list[str]) -> ScriptedModel:
    def answer(request: Any) -> Response:
        calls.append("call")
        return Response(text="done", usage=Usage(input_tokens=300, output_tokens=300, cost=0.03))

    return ScriptedModel(default=answer)


def _spender(name: str, calls: list[str], times: int) -> Workflow:
    wf = Workflow(name)

    @wf.step
    async def spend(ctx: StepContext, input):
        for i in range(times):
            await ai.llm(ctx, f"draft {i}", model=_model(calls))
        return times

    return wf


@pytest.mark.parametrize(
    ("policy", "spent", "flag"),
    [(Policy(max_run_tokens=1000), "1200 tokens of 1000", "--max-run-tokens N"),
     (Policy(max_run_cost=0.05), "$0.0600 of $0.0500", "--max-run-cost USD")],
)
async def test_attack_a_child_spends_past_its_parents_run_budget(store_url: str, policy: Policy, spent: str, flag: str) -> None:
    """The attack: workflow ``ops`` may spend 1,000 tokens (or $0.05) per run; its author moves the
    model calls into a sub-workflow ``ops-helper`` (no policy of its own, or a laxer one): each call
    was checked against the child's budget alone, so the run spent what it liked. Now a child's
    model call is refused once the runs above it have spent their budget, the child's spending
    counted; the refusal names the run whose budget it is and how to raise it."""
    calls: list[str] = []
    child = _spender("ops-helper", calls, times=3)
    parent = Workflow("ops")
    parent.subworkflow("delegate", child, input=lambda input: input)
    grand = Workflow("quarter")
    grand.subworkflow("ops", parent, input=lambda input: input)  # two levels: a grandparent's budget too
    async with Client(_shared(store_url), workflows=[grand, parent, child]) as c:
        await c.set_policy("ops", policy)
        with pytest.raises(RunFailed) as failed:
            await c.run(parent, None)
        assert len(calls) == 2, "a child went on spending past its parent's run budget"
        [run] = await c.list(workflow="ops")
        message = str(failed.value)
        assert f"reached a budget of a run above it ({spent} for run {run.id} of 'ops' and the runs it started)" in message, message
        # it named no flag, quoted the command and left "..." to the reader (a new user's run-through, seventh session)
        assert f"raise it with: podium policy set ops --merge {flag}" in message, message

        calls.clear()
        await c.set_policy("ops", None)
        await c.set_policy("quarter", policy)
        with pytest.raises(RunFailed, match="of 'quarter' and the runs it started"):
            await c.run(grand, None)
        assert len(calls) == 2, "a grandchild went on spending past its grandparent's run budget"


async def test_attack_a_parent_spends_its_budget_again_after_its_child_spent_it(store_url: str) -> None:
    """The attack: ``ops``'s child spent 1,200 of its 1,000 tokens; ``ops`` then called the model
    itself, its own spending (none) under budget. Now a run's own budget check counts what the runs
    it started spent, also once resumed in another engine (here: after waiting for a signal)."""
    calls: list[str] = []
    child = _spender("ops-helper", calls, times=2)
    parent = Workflow("ops")
    parent.subworkflow("delegate", child, input=lambda input: input)

    @parent.step
    async def wait(ctx: StepContext, delegate):
        return await ctx.wait_for("go")

    @parent.step
    async def summary(ctx: StepContext, wait):
        return (await ai.llm(ctx, "summarise", model=_model(calls))).text

    shared = _shared(store_url)
    async with Client(shared, workflows=[parent, child]) as c:
        await c.set_policy("ops", Policy(max_run_tokens=1000))
        run = await c.start(parent, None)
        for _ in range(1000):
            if (await c.get(run.id)).status is RunStatus.WAITING:
                break
            await asyncio.sleep(0.01)
        assert len(calls) == 2
    async with Client(shared, workflows=[parent, child]) as c:
        await c.signal(run.id, "go")
        with pytest.raises(RunFailed, match=r"reached a budget of its policy \(1200 tokens of 1000 for the run and the runs it started\)"):
            await c.result(run.id, timeout=30)
    assert len(calls) == 2, "the parent spent again what its child had spent"


async def test_a_child_within_its_parents_budget_runs_and_a_fork_is_a_new_run(store_url: str) -> None:
    """The other side: within the budget nothing changes, and a fork of the child (a new run, not
    working inside its parent's run) is under its own budget alone."""
    calls: list[str] = []
    child = _spender("ops-helper", calls, times=1)
    parent = Workflow("ops")
    parent.subworkflow("delegate", child, input=lambda input: input)
    async with Client(_shared(store_url), workflows=[parent, child]) as c:
        await c.set_policy("ops", Policy(max_run_tokens=700))
        run = await c.start(parent, None)
        assert await c.result(run.id, timeout=30) == 1
        [kid] = await c.list(parent_run_id=run.id)
        fork = await c.fork(kid.id, "spend")
        assert await c.result(fork.id, timeout=30) == 1
    assert len(calls) == 2


async def test_a_parents_budget_that_asks_a_person_asks_in_the_child(store_url: str) -> None:
    """``on_exceed: approval`` in the parent's policy: the child waits for a person's decision,
    naming the parent's budget, and goes on once approved."""
    calls: list[str] = []
    child = _spender("ops-helper", calls, times=3)
    parent = Workflow("ops")
    parent.subworkflow("delegate", child, input=lambda input: input)
    async with Client(_shared(store_url), workflows=[parent, child], poll_interval=0.02) as c:
        await c.set_policy("ops", Policy(max_run_tokens=1000, on_exceed="approval"))
        run = await c.start(parent, None)
        request: dict[str, Any] = {}
        for _ in range(1000):
            kids = await c.list(parent_run_id=run.id)
            asked = await c.approvals(run_id=kids[0].id) if kids else []
            if asked:
                request = asked[0]
                break
            await asyncio.sleep(0.01)
        assert f"for run {run.id} of 'ops' and the runs it started" in request.get("title", ""), request
        assert len(calls) == 2
        await c.decide(request["run_id"], request["name"], approve=True)
        assert await c.result(run.id, timeout=30) == 3
    assert len(calls) == 3


def test_a_budget_refusal_names_the_flag_of_each_budget_reached() -> None:
    """The refusal's ``podium policy set NAME --merge ...`` left the flag to the reader."""
    from podium.governance.lineage_budgets import budget_flags

    over = ["12 tokens of 10 for the run", "$0.0600 of $0.0500 for run R of 'ops' and the runs it started",
            "900 tokens of 500 today", "$2.0000 of $1.0000 today for entity 'c-1'", "13 tokens of 5 for the run"]
    assert budget_flags(over) == "--max-run-tokens N --max-run-cost USD --max-daily-tokens N --max-entity-cost USD"
