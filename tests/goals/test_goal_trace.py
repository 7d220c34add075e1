"""A goal run's trace: each plan and replan (planner, why, steps), the plan's approval (who, when,
why) and the child runs that ran the plans."""

from __future__ import annotations

import asyncio
from pathlib import Path

import podium
from examples import margins
from podium import goals
from podium.engine.trace import run_trace


def test_a_goal_runs_trace_has_its_plans_approvals_and_child_runs(tmp_path: Path) -> None:
    margins.use_db(str(tmp_path / "shop.db"), faults=("pricing_update",))

    async def main() -> dict:
        async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
            h = await goals.pursue(client, margins.GOAL, skills=margins.skills, context=margins.CONTEXT,
                                   policy=margins.POLICY)
            assert (await goals.settle(client, h.id, timeout=120)).status.value == "waiting"
            waiting = await run_trace(client, h.id)
            assert [c["kind"] for c in waiting["calls"] if c["kind"] in ("plan", "approval")] == ["plan", "approval"]
            assert waiting["calls"][-1]["status"] == "waiting" and "pricing_update" in str(waiting["calls"][-1]["request"])
            [req] = await client.approvals(run_id=h.id)
            await client.decide(h.id, req["name"], approve=True, comment="margins matter more")
            await h.result(timeout=120)
            return await run_trace(client, h.id)

    trace = asyncio.run(main())
    plans = [c for c in trace["calls"] if c["kind"] == "plan"]
    assert [p["n"] for p in plans] == [1, 2] and all(p["planner"] == "rules" for p in plans)
    assert plans[1]["reason"].startswith("replan after pricing_update failed")
    assert "pricing_update" in [s["skill"] for s in plans[0]["steps"]]
    [approval] = [c for c in trace["calls"] if c["kind"] == "approval"]
    assert (approval["by"], approval["approved"], approval["comment"]) == ("local", True, "margins matter more")
    assert len(trace["children"]) == 2 and {c["status"] for c in trace["children"]} <= {"completed", "failed"}
