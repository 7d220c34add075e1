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

The operator's settings are a floor the file cannot lower: ``approve`` is the operator's
``$PODIUM_GOAL_APPROVE`` (default ``skills``) or ``always`` (any rule where the operator's is
``never``); ``max_cost`` is at most
``$PODIUM_GOAL_MAX_COST`` (default 1); ``planner`` is ``rules``, ``local`` or the operator's
``$PODIUM_PLANNER`` (a file never chooses a URL or a model the goal and its context are sent to).
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import ConfigError
from ..yaml import StepType


def _floor(where: str, planner: str | None, approve: str | None, max_cost: float | None) -> tuple[str, str, float]:
    """The planner, approval rule and budget a file may ask for: the operator's, or stricter."""
    own_approve = os.environ.get("PODIUM_GOAL_APPROVE") or "skills"
    own_cost = float(os.environ.get("PODIUM_GOAL_MAX_COST") or "1")
    own_planner = os.environ.get("PODIUM_PLANNER") or "rules"
    if approve is not None and own_approve != "never" and approve not in (own_approve, "always"):  # any rule asks more than never
        raise ConfigError(
            f"{where}: approve: {approve} would lift the operator's approval rule (PODIUM_GOAL_APPROVE={own_approve}); "
            f"a workflow file may ask for {own_approve} or always, and only the operator changes PODIUM_GOAL_APPROVE"
        )
    if max_cost is not None and max_cost > own_cost:
        raise ConfigError(
            f"{where}: max_cost: {max_cost:g} is over the operator's goal budget (PODIUM_GOAL_MAX_COST={own_cost:g}); "
            f"give at most {own_cost:g}, or the operator raises PODIUM_GOAL_MAX_COST"
        )
    if planner is not None and planner not in ("rules", "local", own_planner):
        raise ConfigError(
            f"{where}: planner: {planner!r} is not one a workflow file may choose (the goal and its context are sent "
            f"to it); use rules, local or the operator's planner ({own_planner}), which the operator sets as PODIUM_PLANNER"
        )
    return planner or "rules", approve or own_approve, own_cost if max_cost is None else max_cost


async def _goal(
    ctx: Any, goal: str, context: dict[str, Any] | None = None, planner: str | None = None,
    approve: str | None = None, max_cost: float | None = None, max_replans: int = 2,
) -> Any:
    """Pursue a goal: plan over the configured skills, approve, run, re-plan the rest on failure."""
    from . import GoalPolicy, goal_workflow, load_skills, make_planner

    ref = os.environ.get("PODIUM_SKILLS")
    if not ref:
        raise ConfigError(
            f"step {ctx.step_id!r}: uses: goal needs a skill registry; the operator sets PODIUM_SKILLS=module:attribute"
        )
    planner, approve, max_cost = _floor(f"step {ctx.step_id!r} (uses: goal)", planner, approve, max_cost)
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
