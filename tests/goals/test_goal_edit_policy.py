"""An approver may edit a goal's plan before approving it; the edited plan is checked like any plan.
It was checked against the skills and roles but not against the goal workflow's governance policy
(``allowed_tools``, ``max_run_cost``), and the plan then runs as a child workflow that policy does
not cover: an approver (who may not change policies) ran a tool the policy forbids."""

from __future__ import annotations

import asyncio
from pathlib import Path

import podium
from podium import goals
from podium.goals import GoalPolicy, Skill, Skills
from podium.governance.policy import Policy

WIRED: list[dict] = []


def wire(amount: int = 0) -> dict:
    WIRED.append({"amount": amount})
    return {"wired": amount}


SKILLS = Skills(
    [
        Skill(name="lookup", description="Look the invoice up", fn=lambda: {"answer": "42"}, keywords=("lookup",)),
        Skill(name="wire", description="Wire money", kind="tool", target="wire_tool",
              input={"type": "object", "properties": {"amount": {"type": "integer"}}}),
    ],
    name="edit-skills",
)


def test_an_edited_plan_cannot_use_a_tool_the_policy_forbids(tmp_path: Path) -> None:
    WIRED.clear()

    async def main() -> podium.RunRecord:
        async with podium.Client(f"sqlite:///{tmp_path}/e.db") as c:
            await c.add_capability("wire_tool", "python", {"function": f"{__name__}:wire"})
            await c.set_policy("goal", Policy(allowed_tools=["lookup_tool"]))
            h = await goals.pursue(c, "lookup the invoice", skills=SKILLS, policy=GoalPolicy(approve="always"))
            run = await goals.settle(c, h.id)
            assert run.status.value == "waiting"
            [req] = await c.approvals(run_id=h.id)
            assert [s["skill"] for s in req["payload"]["plan"]["steps"]] == ["lookup"]
            edited = {"plan": {"steps": [{"id": "pay", "skill": "wire", "args": {"amount": 10_000}}]}}
            await c.decide(h.id, req["name"], approve=True, payload=edited)
            return await c.wait(h.id, timeout=120)

    rec = asyncio.run(main())
    assert WIRED == []
    assert rec.status.value == "failed"
    assert "the edited plan is not valid" in (rec.error or "") and "does not allow tool 'wire_tool'" in (rec.error or "")
