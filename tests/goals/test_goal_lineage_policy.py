"""A goal's plan is validated against every policy its run will be held by (attacker review of
policy binding and child-run policies, sixth session, "Suspected"): the plan runs as a child of the
goal run, which may itself be a child, and each run above works through it (its policy must allow
each call). The plan was checked against the goal run's own policy alone: a plan was accepted
(and recorded as valid) that the run then refused."""

from __future__ import annotations

from typing import Any

import pytest

from podium import Client, Policy, RunFailed, Workflow, open_store
from podium.goals import GoalPolicy, Skill, Skills, goal_workflow, plans

WIRED: list[int] = []


def wire(amount: int = 0) -> dict[str, int]:
    WIRED.append(amount)
    return {"wired": amount}


SKILLS = Skills(
    [
        Skill(name="lookup", description="Look the invoice up", fn=lambda: {"answer": "42"}, cost=0.01),
        Skill(name="wire", description="Wire money", kind="tool", target="wire_tool", cost=0.2,
              input={"type": "object", "properties": {"amount": {"type": "integer"}}}),
    ],
    name="lineage-skills",
)


class WirePlanner:
    """Plans the same wire transfer whatever it is told (a planner that does not repair)."""

    name = "wire"

    async def plan(self, ctx: Any, request: Any) -> dict[str, Any]:
        return {"steps": [{"id": "pay", "skill": "wire", "args": {"amount": 10}}]}


def _ops() -> Workflow:
    ops = Workflow("ops")
    goal = goal_workflow(SKILLS, planner=WirePlanner(), policy=GoalPolicy(approve="never", max_replans=0))
    ops.subworkflow("pursue", goal, input=lambda input: {"goal": "pay the invoice"})
    return ops


@pytest.mark.parametrize(
    ("policy", "problem"),
    [
        (Policy(allowed_tools=["lookup_tool"]), "workflow 'ops' (a parent run's) may not call tool 'wire_tool'; its policy allows: lookup_tool"),
        (Policy(max_run_cost=0.05), "estimated cost $0.2000 is over the budget of $0.0500"),
    ],
)
async def test_attack_a_goals_plan_is_accepted_that_a_parent_runs_policy_refuses(store_url: str, policy: Policy, problem: str) -> None:
    """The attack: workflow ``ops`` (its policy allows the tool ``lookup_tool`` only, or runs of at
    most $0.05) pursues a goal as a sub-workflow; the goal workflow has no policy of its own. The
    planner's wire transfer was validated against the goal run's policy alone: accepted, recorded
    as a valid plan, then run (and refused only at the call). Now the plan is validated against
    the policies its run will be held by, the strictest of the lineage: it is refused at
    validation, with the reason the run would be given, and never runs."""
    WIRED.clear()
    shared = open_store(store_url) if store_url.startswith("memory") else store_url
    ops = _ops()
    async with Client(shared, workflows=[ops]) as c:
        await c.add_capability("wire_tool", "python", {"function": f"{__name__}:wire"})
        await c.set_policy("ops", policy)
        with pytest.raises(RunFailed) as failed:
            await c.run(ops, {})
        [goal_run] = await c.list(workflow="goal")
        records = await plans(c, goal_run.id)
        runs_of_plans = await c.list(parent_run_id=goal_run.id)
    assert WIRED == []
    assert records and all(problem in " ".join(r["problems"]) for r in records), records
    assert runs_of_plans == [], "a plan its parent's policy refuses was run"
    assert "no valid plan" in str(failed.value) and problem in str(failed.value), failed.value


async def test_a_plan_the_lineages_policies_allow_runs(store_url: str) -> None:
    """The other side: with ``ops`` allowing the tool (and a budget above the plan's estimate), the
    same plan is valid and runs."""
    WIRED.clear()
    shared = open_store(store_url) if store_url.startswith("memory") else store_url
    ops = _ops()
    async with Client(shared, workflows=[ops]) as c:
        await c.add_capability("wire_tool", "python", {"function": f"{__name__}:wire"})
        await c.set_policy("ops", Policy(allowed_tools=["wire_tool"], max_run_cost=1.0))
        out = await c.run(ops, {})
    assert out["status"] == "completed" and WIRED == [10]
