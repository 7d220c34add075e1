"""Attack (reviews of the eighth session): a run's input from outside refused NaN, Infinity and deep
nesting (``Workflow.validate_start_input``), but a child run's input did not: a step that passed on
a value it was given (a tool's or a model's output, a row read) started a child whose limit check
(``amount <= 1000``) neither passed nor stopped ``NaN``, and a payload nested thousands deep failed
with a RecursionError instead of saying what was wrong. Now a child's input is checked as a start's:
the step fails naming the field, and no child run is made."""

from __future__ import annotations

from typing import Any

import pytest

from podium import Client, RunFailed, StepContext, Workflow


def _deep(n: int) -> list:
    top: list = []
    cur = top
    for _ in range(n):
        nxt: list = []
        cur.append(nxt)
        cur = nxt
    return top


@pytest.mark.parametrize(
    ("bad", "said"),
    [({"amount": float("nan")}, "NaN"), ({"amount": float("-inf")}, "Infinity"), ({"x": _deep(5000)}, "nested deeper")],
    ids=["nan", "infinity", "deep"],
)
async def test_attack_a_child_runs_input_cannot_carry_nan_infinity_or_deep_nesting(
    store_url: str, bad: Any, said: str
) -> None:
    child = Workflow("payout")

    @child.step
    async def pay(ctx: StepContext, input: Any):
        return "needs a manager" if not input["amount"] <= 1000 else f"paid {input['amount']}"

    parent = Workflow("batch")

    @parent.step
    async def each(ctx: StepContext, input: Any):
        return await ctx.run_workflow(child, input, name="one")

    async with Client(store_url, workflows=[parent, child], poll_interval=0.02) as c:
        handle = await c.start(parent, {"amount": 5})
        assert await handle.result() == "paid 5"
        # the parent's own input is clean; the value it passes on is not (as a tool's output would be)
        parent.steps["each"].fn = _passing_on(child, bad)  # type: ignore[attr-defined]
        bad_run = await c.start(parent, {"amount": 5})
        with pytest.raises(RunFailed, match=said) as err:
            await bad_run.result()
        assert "payout" in str(err.value)
        runs = await c.list(workflow="payout", limit=100)
        assert len(runs) == 1  # the first, clean child only


def _passing_on(child: Workflow, value: Any) -> Any:
    async def each(ctx: StepContext, input: Any):
        return await ctx.run_workflow(child, value, name="one")

    return each
