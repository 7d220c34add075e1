"""Goal-driven orchestration over HTTP: start a goal run, read its plans.

``POST /api/goals`` starts a run of the operator's configured goal workflow
(:mod:`podium.goals.default`, ``$PODIUM_SKILLS``) as the caller; ``GET /api/runs/{id}/plan``
answers every plan and replan of a goal run, with its text graph.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from ..governance.identity import Principal
from ._run_paths import RunRoute
from .auth import acting
from .errors import ApiError
from .openapi import documented

router = APIRouter(prefix="/api", tags=["goals"], route_class=RunRoute)


class GoalBody(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a mistyped field (contxt) is named, not dropped

    goal: str = Field(min_length=1, max_length=2000)
    """What to achieve, in words; the planner picks skills for it."""
    context: dict[str, Any] = Field(default_factory=dict)
    """Facts the plan's steps read (a vendor, a SKU...)."""


class GoalStarted(BaseModel):
    run_id: str
    plan: str
    """Where the run's plans are read (``GET /api/runs/{run_id}/plan``)."""


class GoalPlans(BaseModel):
    run_id: str
    status: str
    plans: list[dict[str, Any]]
    """Every plan and replan, with its reason, steps, approval and cost estimate."""
    graph: str
    """The plans as a text graph (what ``podium plan show`` prints)."""


@router.post(
    "/goals",
    **documented("pursueGoal", GoalStarted, 409, 422),
    summary="Pursue a goal with a validated plan over the configured skills",
)
async def start_goal(
    request: Request,
    body: GoalBody,
    who: Principal = Depends(acting),
) -> dict[str, Any]:
    from ..errors import ConfigError
    from ..goals.default import start

    try:  # planned for the caller's roles, which the engine reads from the audit log (not from here)
        handle = await start(request.app.state.client, body.goal, body.context)
    except ConfigError as exc:
        raise ApiError(409, "not_configured", str(exc)) from None
    return {"run_id": handle.id, "plan": f"/api/runs/{quote(handle.id, safe='')}/plan"}  # the id as one segment


@router.get("/runs/{run_id:path}/plan", **documented("getRunPlan", GoalPlans, 404), summary="Every plan and replan of a goal run")
async def run_plan(request: Request, run_id: str, who: Principal = Depends(acting)) -> dict[str, Any]:
    from .. import goals

    client = request.app.state.client
    await client.authorize("runs.read", run_id)
    return await goals.describe(client, run_id)  # with each plan's approval and its steps' status
