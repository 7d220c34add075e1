"""``uses: goal`` in workflow files: pursue a goal with the admin-configured skill registry.

::

    - id: protect
      uses: goal
      with:
        goal: "A vendor raised prices {{ input.pct }}%: protect our margins"
        context: {vendor: "{{ input.vendor }}", increase_pct: "{{ input.pct }}"}

The registry is not named by the file (that would let a file select code): it is the one the
operator configured as ``$PODIUM_SKILLS`` (``module:attribute``). The goal runs as a child run, so
it plans for whoever started the workflow (the audit log says who, with their roles): only the
skills their roles may use are offered. Plans needing approval wait like any approval.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import ConfigError
from ..yaml import StepType


async def _goal(
    ctx: Any, goal: str, context: dict[str, Any] | None = None, planner: str = "rules", approve: str = "skills",
    max_cost: float = 1.0, max_replans: int = 2,
) -> Any:
    """Pursue a goal: plan over the configured skills, approve, run, re-plan the rest on failure."""
    from . import GoalPolicy, goal_workflow, load_skills, make_planner

    ref = os.environ.get("PODIUM_SKILLS")
    if not ref:
        raise ConfigError(
            f"step {ctx.step_id!r}: uses: goal needs a skill registry; the operator sets PODIUM_SKILLS=module:attribute"
        )
    skills = load_skills(ref)
    policy = GoalPolicy(approve=approve, max_cost=max_cost, max_replans=max_replans)
    wf = goal_workflow(skills, planner=make_planner(planner), policy=policy, name="goal")
    return await ctx.run_workflow(wf, {"goal": goal, "context": context or {}}, name="goal")


goal_step = StepType(
    name="goal",
    fn=_goal,
    args={
        "type": "object",
        "properties": {
            "goal": {"type": "string", "minLength": 1},
            "context": {"type": "object"},
            "planner": {"type": "string"},
            "approve": {"enum": ["always", "never", "cost", "skills"]},
            "max_cost": {"type": "number", "minimum": 0},
            "max_replans": {"type": "integer", "minimum": 0, "maximum": 5},
        },
        "required": ["goal"],
        "additionalProperties": False,
    },
    output={"type": "object", "properties": {"status": {"type": "string"}, "outputs": {"type": "object"}}},
    description="Pursue a goal with a validated, approved plan over the configured skills",
)
