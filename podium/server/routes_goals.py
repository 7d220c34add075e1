"""Goal-driven orchestration over HTTP: start a goal run, read its plans.

``POST /api/goals`` starts a run of the operator's configured goal workflow
(:mod:`podium.goals.default`, ``$PODIUM_SKILLS``) as the caller; ``GET /api/runs/{id}/plan``
answers every plan and replan of a goal run, with its text graph.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request

from ..governance.identity import Principal
from .auth import acting
from .errors import ApiError

router = APIRouter(prefix="/api", tags=["goals"])


@router.post("/goals", summary="Pursue a goal with a validated plan over the configured skills")
async def start_goal(
    request: Request,
    goal: str = Body(..., embed=True, min_length=1, max_length=2000),
    context: dict[str, Any] = Body(default_factory=dict, embed=True),
    who: Principal = Depends(acting),
) -> dict[str, Any]:
    from ..errors import ConfigError
    from ..goals.default import start

    try:  # planned for the caller's roles, which the engine reads from the audit log (not from here)
        handle = await start(request.app.state.client, goal, context)
    except ConfigError as exc:
        raise ApiError(409, "not_configured", str(exc)) from None
    return {"run_id": handle.id, "plan": f"/api/runs/{handle.id}/plan"}


@router.get("/runs/{run_id}/plan", summary="Every plan and replan of a goal run")
async def run_plan(request: Request, run_id: str, who: Principal = Depends(acting)) -> dict[str, Any]:
    from .. import goals

    client = request.app.state.client
    await client.authorize("runs.read", run_id)
    return await goals.describe(client, run_id)  # with each plan's approval and its steps' status
