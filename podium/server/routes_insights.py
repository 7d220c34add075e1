"""What the dashboard's Capabilities, KPIs and Costs pages read: the capability registry and the
skills planners may use (with who may use each), the business figures workflows reported over time
(``ctx.metric``), and model cost per workflow and UTC day (``podium.engine.insights``).

Each needs ``workflows.read`` (capabilities) or ``runs.read`` (figures and costs, as ``/metrics``).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from ..governance.identity import Principal
from .auth import acting
from .openapi import documented

router = APIRouter(prefix="/api")

DAYS = Query(default=30, gt=0, le=366, description="How many days back (runs created since then).")
LIMIT = Query(default=2000, ge=1, le=20_000, description="Read at most this many runs (newest first).")
WORKFLOW = Query(default=None, max_length=200, description="Only this workflow's runs.")


# -- answers ---------------------------------------------------------------------------------------


class RegisteredCapability(BaseModel):
    name: str
    kind: str = Field(description="python, http, mcp, files, connector...")
    summary: str = Field(description="What the name reaches, in one line.")
    description: str
    added_by: str
    added_at: float
    allow_private: bool
    tool: bool = Field(description="A tool step or an agent can call it by name.")
    policies: dict[str, str] = Field(
        description="Workflows whose policy decides about it: `allowed`, `refused` or `approval` "
        "(a workflow not listed may use it)."
    )


class SkillInfo(BaseModel):
    name: str
    kind: str
    description: str
    input: dict[str, Any]
    output: dict[str, Any]
    cost: float
    latency: float
    roles: list[str] = Field(description="Roles that may use it; empty: every role.")
    target: str
    tags: list[str]
    usable: bool = Field(description="Whether the caller's roles may use it.")


class CapabilityList(BaseModel):
    capabilities: list[RegisteredCapability]
    skills: list[SkillInfo]
    skills_source: str | None = Field(description="`$PODIUM_SKILLS` of the server (null: no goal skills).")
    skills_error: str | None = Field(default=None, description="Why the skill registry could not be loaded.")
    managed_by: str = Field(description="The permission that adds and removes capabilities.")


class Window(BaseModel):
    since: float
    until: float
    runs: int = Field(description="Runs read.")
    truncated: bool = Field(description="More runs were created in the window than `limit`.")


class KpiPoint(BaseModel):
    metric: str
    kind: str = Field(description="`gauge` (a value) or `counter` (an amount added).")
    value: float
    ts: float
    workflow: str
    run_id: str
    step: str
    labels: dict[str, str]


class KpiList(BaseModel):
    window: Window
    points: list[KpiPoint] = Field(description="Oldest first.")


class DayCost(BaseModel):
    day: str = Field(description="UTC day, `YYYY-MM-DD`.")
    workflow: str
    runs: int
    calls: int
    input_tokens: int
    output_tokens: int
    cost: float
    unpriced: int = Field(description="Calls of a model without a known price (not in `cost`).")


class CostList(BaseModel):
    window: Window
    days: list[DayCost]
    total: float


# -- routes ----------------------------------------------------------------------------------------


@router.get(
    "/capabilities",
    tags=["capabilities"],
    **documented("listCapabilities", CapabilityList),
    summary="Registered tools and connectors, and the skills planners may use, with who may use them",
)
async def capabilities(request: Request, who: Principal = Depends(acting)) -> dict[str, Any]:
    from ..governance.capabilities import KINDS, PERMISSION

    client = request.app.state.client
    registered = await client.capabilities()  # needs workflows.read
    policies = await client.policies()
    out = []
    for name, cap in sorted(registered.items()):
        kind = KINDS.get(cap.kind)
        decided: dict[str, str] = {}
        for wf, policy in sorted(policies.items()):
            if cap.kind == "connector":  # NAME or NAME.OPERATION entries (docs/governance.md)
                allowed, approve = policy.allowed_connectors, policy.approve_connectors
                some = allowed is not None and any(e.startswith(f"{name}.") for e in allowed)
                if allowed is not None and name not in allowed and not some:
                    decided[wf] = "refused"
                elif any(e == name or e.startswith(f"{name}.") for e in approve):
                    decided[wf] = "approval"
                elif allowed is not None:
                    decided[wf] = "allowed" if name in allowed else "some operations"
            elif policy.allowed_tools is not None and name not in policy.allowed_tools:
                decided[wf] = "refused"
            elif name in policy.approve_tools:
                decided[wf] = "approval"
            elif policy.allowed_tools is not None:
                decided[wf] = "allowed"
        out.append(
            {
                "name": name,
                "kind": cap.kind,
                "summary": cap.summary,
                "description": cap.description,
                "added_by": cap.added_by,
                "added_at": cap.added_at,
                "allow_private": cap.allow_private,
                "tool": bool(kind and kind.tool),
                "policies": decided,
            }
        )
    skills, source, error = _skills(None if who.local else who.roles)
    return {
        "capabilities": out,
        "skills": skills,
        "skills_source": source,
        "skills_error": error,
        "managed_by": PERMISSION,
    }


def _skills(roles: tuple[str, ...] | None) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """The goal skills of ``$PODIUM_SKILLS`` (the server's configuration, never a request's)."""
    ref = os.environ.get("PODIUM_SKILLS")
    if not ref:
        return [], None, None
    from ..goals import load_skills

    try:
        registry = load_skills(ref)
    except Exception as exc:  # shown on the page: the operator's configuration is broken
        return [], ref, f"{type(exc).__name__}: {exc}"
    return [{**s.info(), "usable": s.allowed(roles)} for s in registry], ref, None


@router.get(
    "/kpis",
    tags=["metrics"],
    **documented("listKpis", KpiList, 422),
    summary="Business figures (ctx.metric) reported by runs, over time",
)
async def list_kpis(
    request: Request,
    days: float = DAYS,
    workflow: str | None = WORKFLOW,
    metric: str | None = Query(default=None, max_length=200, description="Only this figure."),
    limit: int = LIMIT,
    who: Principal = Depends(acting),
) -> dict[str, Any]:
    """Every figure a step reported with `ctx.metric(...)`, with its run, step, time and labels."""
    from ..engine.insights import kpis

    report = await kpis(request.app.state.client, days=days, workflow=workflow, metric=metric, limit=limit)
    return {
        "window": dataclasses.asdict(report.window),
        "points": [dataclasses.asdict(p) for p in report.points],
    }


@router.get(
    "/costs",
    tags=["metrics"],
    **documented("listDailyCosts", CostList, 422),
    summary="Model tokens and cost per workflow and UTC day",
)
async def list_costs(
    request: Request,
    days: float = DAYS,
    workflow: str | None = WORKFLOW,
    limit: int = LIMIT,
    who: Principal = Depends(acting),
) -> dict[str, Any]:
    """Each model or classifier call counts on the UTC day it finished (as daily budgets do)."""
    from ..engine.insights import daily_costs

    report = await daily_costs(request.app.state.client, days=days, workflow=workflow, limit=limit)
    rows = [{k: v for k, v in dataclasses.asdict(d).items() if not k.startswith("_")} for d in report.days]
    return {"window": dataclasses.asdict(report.window), "days": rows, "total": report.total}
