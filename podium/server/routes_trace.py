"""A run's trace over HTTP: ``GET /api/runs/{id}/trace`` (podium.engine.trace).

Read as the caller, through the same check as ``GET /api/runs/{id}`` (``runs.read`` on the run;
prompt, answer and argument text needs ``payloads.read``). The dashboard's run page shows it and
refreshes it from the run's event stream while the run goes on.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from ..engine.trace import run_trace
from ..governance.identity import Principal
from ._run_paths import RunRoute
from .auth import acting
from .openapi import documented

router = APIRouter(prefix="/api", tags=["runs"], route_class=RunRoute)


class TraceRun(BaseModel):
    id: str
    workflow: str
    version: str
    status: str
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None


class TraceTotals(BaseModel):
    model_calls: int
    tool_calls: int = Field(description="Tool and connector calls.")
    input_tokens: int
    output_tokens: int
    cached_tokens: int = Field(description="Input tokens served from providers' prompt caches.")
    cost: float | None = Field(default=None, description="US dollars; null when no price is known.")
    latency: float = Field(description="Seconds spent in model calls.")


class TraceEntry(BaseModel):
    """One call of a step, in log order. Fields beyond these depend on ``kind``: ``model`` (provider,
    model, prompt, response, input/output/cached tokens, latency, cost, trail, agent, iteration),
    ``tool`` and ``connector`` (arguments, result), ``route`` and ``classify`` (confidence),
    ``gate`` (passed, rules), ``plan`` (n, planner, reason, steps), ``approval`` (title, by,
    approved, comment, requested_at, decided_at), ``wait`` and ``call``."""

    model_config = ConfigDict(extra="allow")
    kind: str
    call: str
    step: str = Field(description="The step execution's key (`step`, `step#2`, `step[3]`).")
    status: str = Field(description="completed, failed, cancelled or waiting.")
    ts: float


class TraceSegment(BaseModel):
    model_config = ConfigDict(extra="allow")
    kind: str = Field(description="attempt, backoff, wait or call.")
    start: float
    end: float | None = Field(default=None, description="Null while it goes on.")
    status: str | None = None
    label: str | None = None


class TraceRow(BaseModel):
    step: str
    segments: list[TraceSegment]


class TraceChild(BaseModel):
    id: str
    workflow: str
    status: str
    created_at: float


class RunTrace(BaseModel):
    run: TraceRun
    now: float = Field(description="The server's clock when the trace was read (open segments end here).")
    payloads_hidden: bool = Field(description="The caller lacks payloads.read: no prompt, answer or argument text.")
    prompts_stored: bool = Field(description="Some model call kept its prompt (see the trace_prompts setting).")
    totals: TraceTotals
    calls: list[TraceEntry]
    timeline: list[TraceRow]
    children: list[TraceChild] = Field(description="Runs this run started (a routed workflow, a goal's plans), oldest first.")


@router.get(
    "/runs/{run_id:path}/trace",
    **documented("getRunTrace", RunTrace, 404),
    summary="What the AI did in a run: model, tool and connector calls, decisions, approvals, timeline",
)
async def get_trace(run_id: str, request: Request, who: Principal = Depends(acting)) -> dict[str, Any]:
    return await run_trace(request.app.state.client, run_id)
