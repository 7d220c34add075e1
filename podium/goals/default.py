"""The goal workflow an operator configures, loadable by reference (``podium.goals.default:workflow``)
so that any process (``podium approvals approve``, a worker) can resume a goal run.

Configured by the environment, never by a run's input: ``PODIUM_SKILLS`` (``module:attribute`` of
a :class:`~podium.goals.Skills`), ``PODIUM_PLANNER`` (``rules``, ``local``, ``model:SPEC`` or a
URL), ``PODIUM_GOAL_APPROVE`` (``always``, ``never``, ``cost``, ``skills``; default ``skills``) and
``PODIUM_GOAL_MAX_COST`` (USD, default 1).
"""

from __future__ import annotations

import os
from typing import Any

REF = "podium.goals.default:workflow"


def build() -> Any:
    """The configured goal workflow (raises ConfigError when ``PODIUM_SKILLS`` is not set)."""
    from ..errors import ConfigError
    from . import GoalPolicy, goal_workflow, load_skills, make_planner

    ref = os.environ.get("PODIUM_SKILLS")
    if not ref:
        raise ConfigError(
            "goals need a skill registry: set PODIUM_SKILLS=module:attribute (e.g. examples.margins:skills) in "
            "the environment of every process that starts or resumes goal runs (podium approvals approve, "
            "podium worker, podium serve); --skills of podium goals start sets it for that command only"
        )
    skills = load_skills(ref)
    policy = GoalPolicy(
        approve=os.environ.get("PODIUM_GOAL_APPROVE", "skills"),
        max_cost=float(os.environ.get("PODIUM_GOAL_MAX_COST", "1")),
    )
    wf = goal_workflow(skills, planner=make_planner(os.environ.get("PODIUM_PLANNER")), policy=policy)
    wf.ref = REF
    wf.goal_skills = skills  # type: ignore[attr-defined]
    return wf


def __getattr__(name: str) -> Any:
    if name == "workflow":
        return build()
    raise AttributeError(name)


async def start(client: Any, goal: str, context: dict[str, Any] | None = None) -> Any:
    """Start a run of the configured goal workflow as the client's acting principal (what
    ``POST /api/goals``, the MCP tool ``pursue_goal`` and ``podium goals start`` do): it needs
    ``runs.start``, and the plan is made for that principal's roles. Raises ConfigError when no
    skill registry is configured."""
    await client.authorize("runs.start", "goal")
    wf = build()
    client.register(wf)
    return await client.start(wf, {"goal": goal, "context": dict(context or {})})
