"""Goal-driven orchestration: a goal becomes a validated plan over registered skills, approved by a
person when policy says so, run durably, and re-planned (the rest of it) when a step fails.

>>> skills = goals.Skills([goals.Skill(name="pricing", description="...", fn=reprice, ...)])
>>> handle = await goals.pursue(client, "a vendor raised prices 14%: protect our margins", skills=skills)
>>> print(await goals.show_plan(client, handle.run_id))

See ``docs/goals.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._orchestrator import goal_workflow, plans_of, render
from ._plan import Plan, PlanStep, to_yaml
from ._planners import LLMPlanner, Planner, PlanRequest, RulePlanner, make_planner, plan_schema
from ._policy import GoalPolicy
from ._run import LowConfidence, compile_plan
from ._skills import CONTROL_WORDS, Skill, Skills, is_control_name, load_skills
from ._validate import PlanProblem, estimate, validate_plan
from ._view import describe


async def pursue(
    client: Any,
    goal: str,
    *,
    skills: Skills,
    context: dict[str, Any] | None = None,
    planner: Any = None,
    policy: GoalPolicy | None = None,
    name: str = "goal",
    run_id: str | None = None,
    roles: Sequence[str] | None = None,
) -> Any:
    """Start pursuing ``goal`` as a durable run; returns its :class:`~podium.RunHandle`.

    The plan is made for the principal that starts the run (the client's, or the one it acts as):
    only skills their roles may use are offered to the planner and accepted by the validator.
    ``roles`` narrows them further (it never adds one the principal does not hold). The run waits
    for a person when ``policy`` asks for approval (``podium approvals approve RUN``)."""
    wf = client.workflows().get(name) and client.workflow(name)
    if wf is None or getattr(wf, "goal_skills", None) is not skills:
        wf = goal_workflow(skills, planner=planner, policy=policy, name=name)
        wf.goal_skills = skills  # type: ignore[attr-defined]
        client.register(wf)
    given: dict[str, Any] = {"goal": goal, "context": context or {}}
    if roles is not None:
        given["roles"] = list(roles)
    return await client.start(wf, given, run_id=run_id)


async def settle(client: Any, run_id: str, timeout: float = 120.0) -> Any:
    """Wait until the goal run has finished or waits for a person (a plan to approve); its record."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        run = await client.get(run_id)
        if run.status.finished or (run.status.value == "waiting" and await client.approvals(run_id=run_id)):
            return run
        if time.monotonic() > deadline:
            from ..errors import PodiumError

            raise PodiumError(f"goal run {run_id} neither finished nor asked for approval in {timeout:.0f}s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)


async def show_plan(client: Any, run_id: str) -> str:
    """Every plan and replan of a goal run as a text graph (``podium plan show RUN``)."""
    return render(await client.history(run_id))


async def plans(client: Any, run_id: str) -> list[dict[str, Any]]:
    """Every plan record of a goal run (plan, reason, problems, estimate, context scopes), in order."""
    return plans_of(await client.history(run_id))


__all__ = [
    "CONTROL_WORDS",
    "GoalPolicy",
    "LLMPlanner",
    "LowConfidence",
    "Plan",
    "PlanProblem",
    "PlanRequest",
    "PlanStep",
    "Planner",
    "RulePlanner",
    "Skill",
    "Skills",
    "compile_plan",
    "describe",
    "estimate",
    "goal_workflow",
    "is_control_name",
    "load_skills",
    "make_planner",
    "plan_schema",
    "plans",
    "plans_of",
    "pursue",
    "render",
    "settle",
    "show_plan",
    "to_yaml",
    "validate_plan",
]
