"""The API's JSON as pydantic models: what the OpenAPI document says each endpoint answers.

The routes still build their answers as plain dicts (``_views.py``); these models describe them for
``/openapi.json`` (and so for generated clients) without re-serializing them, so what the server
sends stays exactly what it sent before. ``tests/server/test_openapi.py`` holds the two together:
schemathesis checks that real answers conform, and a generated client parses them.

Models do not forbid unknown fields: a field added to an answer is not a breaking change.
Shared shapes live here; an answer used by one route only sits beside its route.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

#: Documented by every field that holds a run's data (input, output, payloads).
PAYLOAD = (
    "Run data as JSON; secret fields show as `***`; `[hidden: needs payloads.read]` without that permission."
)


class ErrorDetail(BaseModel):
    code: str = Field(
        description="Stable, for programs to switch on: `bad_request`, `invalid_request`, `invalid_input`, "
        "`invalid_workflow`, `invalid_policy`, `not_serializable`, `unauthorized`, `permission_denied`, "
        "`not_found`, `method_not_allowed`, `kill_switch_active`, `run_failed`, `request_too_large`, "
        "`store_unavailable`, `model_unavailable`, `dependency_missing`, `podium_error`, `internal`."
    )
    message: str = Field(description="What is wrong, where, and how to fix it (for people).")
    problems: list[str] | None = Field(
        default=None, description="Every problem, when a workflow definition has more than one."
    )


class ErrorBody(BaseModel):
    """Every error the server answers (4xx and 5xx), whatever raised it."""

    error: ErrorDetail


# -- runs ------------------------------------------------------------------------------------------


class Run(BaseModel):
    id: str
    workflow: str
    version: str
    status: str = Field(description="pending, running, waiting, completed, failed or cancelled.")
    input: Any = Field(default=None, description=PAYLOAD)
    output: Any = Field(default=None, description=PAYLOAD)
    error: Any = Field(default=None, description="Why the run failed (type, message, step).")
    created_at: float = Field(description="Epoch seconds.")
    started_at: float | None = None
    finished_at: float | None = None
    parent_run_id: str | None = None
    forked_from: str | None = None
    fork_step: str | None = None
    queue: str
    priority: int
    tenant: str | None = None


class RunEnvelope(BaseModel):
    run: Run


class RunEvent(BaseModel):
    seq: int = Field(description="Orders a run's events from 1.")
    type: str = Field(description="run_started, step_started, step_completed, step_waiting...")
    ts: float
    step: str | None = None
    iteration: int
    index: int | None = None
    attempt: int
    data: Any = Field(default=None, description="Event details (output, error, timings). " + PAYLOAD)


class Usage(BaseModel):
    input_tokens: int
    output_tokens: int
    latency: float = Field(description="Seconds, wall clock.")
    cost: float | None = Field(default=None, description="US dollars; null when the price is unknown.")
    calls: int
    cached_tokens: int = Field(default=0, description="Input tokens served from the provider's prompt cache.")


class CallUsage(Usage):
    step: str
    call: str = Field(description="The call's name within its step (`llm`, `tool.search`).")
    kind: str = Field(description="model, classify or tool.")
    model: str


class UsageReport(BaseModel):
    total: Usage
    by_step: dict[str, Usage] = Field(description="By step key (`step`, `step#2`, `step[3]`).")
    calls: list[CallUsage]


class Step(BaseModel):
    step: str
    key: str = Field(description="`step`, `step#2` (loop iteration) or `step[3]` (map item).")
    iteration: int
    index: int | None = None
    status: str
    attempts: int
    started_at: float | None = None
    finished_at: float | None = None
    duration: float | None = None
    output: Any = None
    error: Any = None
    errors: list[Any] = Field(description="Every failed attempt's error, oldest first.")
    reason: str | None = None
    reused_from: str | None = Field(default=None, description="A forked run: whose result was reused.")
    calls: list[RunEvent] = Field(description="The step's calls: prompts, model responses, tool results.")
    usage: Usage | None = None


# -- workflows -------------------------------------------------------------------------------------


class WorkflowStep(BaseModel):
    id: str
    kind: str | None = None
    deps: list[str]
    description: str
    map: str | None = None
    loop: bool


class WorkflowView(BaseModel):
    name: str
    version: str
    versions: list[str]
    description: str
    ref: str | None = None
    triggers: list[Any] = Field(description="What starts it: schedules, events, webhooks (YAML workflows).")
    steps: list[WorkflowStep] = Field(description="In execution order.")
