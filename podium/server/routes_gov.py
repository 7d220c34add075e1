"""Workflows (list, versions, deploy), approvals, audit, kill switches and who-am-I."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from ..governance.identity import Principal
from ..governance.service import APPROVAL_PREFIX
from ._run_paths import ELSEWHERE, as_sent
from ._views import MAX_SEQ, approval_after, approval_cursor, workflow_json
from .auth import acting
from .errors import ApiError
from .openapi import documented
from .schemas import WorkflowView

router = APIRouter(prefix="/api")


# -- answers (described in the OpenAPI document) ---------------------------------------------------


class Me(BaseModel):
    name: str
    roles: list[str]
    permissions: list[str]
    local: bool = Field(description="True in local mode (a store without users, no token).")
    service: bool


class WorkflowList(BaseModel):
    workflows: list[WorkflowView]


class Approval(BaseModel):
    run_id: str
    workflow: str
    step: str | None = None
    name: str = Field(description="The approval's signal name: decide it at /api/approvals/{run_id}/{name}.")
    requested_at: float
    deadline: float | None = None
    title: str | None = None
    payload: Any = Field(default=None, description="What to approve (null without payloads.read).")
    role: str | None = Field(default=None, description="The role that may decide, if restricted.")


class ApprovalList(BaseModel):
    approvals: list[Approval] = Field(description="Oldest request first.")
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` for the next page (read from an index: fast however many runs are "
        "parked); null on the last page.",
    )


class Decided(BaseModel):
    decided: bool = Field(description="False if it had already been decided.")
    approved: bool
    by: str


class AuditEntry(BaseModel):
    seq: int
    ts: float
    actor: str
    action: str = Field(description="run.start, run.cancel, approval.decide, killswitch.set...")
    target: str
    data: Any = None


class AuditLog(BaseModel):
    entries: list[AuditEntry]


class AuditCheck(BaseModel):
    entries: int
    intact: bool
    problem: str | None = Field(default=None, description="The first broken link, if any.")


class SwitchState(BaseModel):
    mode: str
    reason: str
    by: str
    ts: float


class SwitchList(BaseModel):
    switches: dict[str, SwitchState] = Field(description="By `scope:name`.")


class Woken(BaseModel):
    woken: int = Field(description="How many paused runs were woken.")


@router.get("/me", tags=["auth"], **documented("getMe", Me), summary="Who the token stands for")
async def me(who: Principal = Depends(acting)) -> dict[str, Any]:
    return {
        "name": who.name,
        "roles": list(who.roles),
        "permissions": sorted(who.permissions),
        "local": who.local,
        "service": who.service,
    }


@router.get(
    "/workflows",
    tags=["workflows"],
    **documented("listWorkflows", WorkflowList),
    summary="Registered workflows, latest version of each",
)
async def list_workflows(request: Request, who: Principal = Depends(acting)) -> dict[str, Any]:
    from .deployed import refresh

    client = request.app.state.client
    await client.authorize("workflows.read")
    await refresh(client, request.app.state.deploy_failures)  # also those deployed since the start
    versions = client.workflows()
    return {
        "workflows": [
            workflow_json(client.workflow(name), versions=sorted(vs)) for name, vs in sorted(versions.items())
        ]
    }


@router.get(
    "/workflows/{name}",
    tags=["workflows"],
    **documented("getWorkflow", WorkflowView, 404),
    summary="A workflow's graph and versions",
)
async def get_workflow(
    name: str, request: Request, version: str | None = None, who: Principal = Depends(acting)
) -> dict[str, Any]:
    client = request.app.state.client
    from .deployed import serving

    await client.authorize("workflows.read", f"workflow:{name}")
    wf = await serving(client, name, version, "workflows.read")  # also one deployed since the start
    return workflow_json(wf, versions=client.registry.versions(name))


@router.post(
    "/workflows",
    tags=["workflows"],
    **documented("deployWorkflow", WorkflowView, 400, 409, 422, status=201),
    summary="Deploy a YAML workflow",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The workflow's YAML text (any content type is read as text).",
            "content": {
                "application/yaml": {"schema": {"type": "string"}},
                # what generated clients can send (openapi-python-client has no YAML bodies)
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def deploy_workflow(request: Request, who: Principal = Depends(acting)) -> dict[str, Any]:
    from ..errors import ConfigError

    client = request.app.state.client
    await client.authorize("workflows.deploy")
    text = (await request.body()).decode("utf-8", errors="replace")
    if not text.strip():
        raise ConfigError("the request body must be a YAML workflow (Content-Type: application/yaml)")
    # The engine's deploy: a new version only when the text changed, kept in the store (so every
    # process resumes its runs with it), made active, audited.
    # Text only: a body that looks like a path or a module reference is never read or imported.
    wf = await client.deploy(text, base_dir=request.app.state.settings.deploy_dir, text_only=True)
    triggers = request.app.state.triggers
    triggers.refresh()
    for (method, path), names in triggers.hook_conflicts.items():
        if wf.name in names and triggers.webhooks.get((method, path), (None,))[0] != wf.name:
            others = ", ".join(repr(n) for n in names if n != wf.name)
            raise ApiError(
                409, "webhook_conflict", f"{wf.name!r} version {wf.version} is deployed and active, but its webhook "
                f"{method} {path} is declared by {others} too and is not {wf.name!r}'s: deploy it again with another "
                f"path (or roll it back: podium workflows rollback {wf.name})",
            )
    return workflow_json(wf, versions=client.registry.versions(wf.name))


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt `payload` must not approve the unedited one

    approve: bool
    comment: str = ""
    payload: Any = Field(default=None, description="An edited payload (what the run continues with).")
    edited: bool = Field(default=False, description="Send `payload` as an edit (even if it is null).")
    request: int | None = Field(
        default=None,
        description="The request's `seq` as the inbox listed it: a run that asked again under this name since "
        "(a loop, a wait that timed out) is not decided by what was shown for the earlier request (404). A step "
        "asking under one name about several questions at once has a request open per question (`NAME`, "
        "`NAME@DIGEST`): without `request` none is decided (400, listing them); with it, that one.",
    )


@router.get(
    "/approvals",
    tags=["approvals"],
    **documented("listApprovals", ApprovalList, 422),
    summary="Open approval requests, oldest first",
)
async def list_approvals(
    request: Request,
    run_id: str | None = None,
    workflow: str | None = Query(default=None, description="Only requests of this workflow's runs."),
    limit: int = Query(default=100, ge=1, le=1000),
    cursor: str | None = Query(
        default=None, max_length=2000, description="The `next_cursor` of the previous page: the requests after it."
    ),
    who: Principal = Depends(acting),
) -> dict[str, Any]:
    after = approval_after(cursor) if cursor else None
    if cursor and after is None:
        raise ApiError(
            422, "invalid_cursor", f"cursor {cursor[:40]!r} is not a next_cursor this API gave; start again without one"
        )
    items = await request.app.state.client.approvals(run_id=run_id, workflow=workflow, limit=limit, after=after)
    last = items[-1] if len(items) == limit else None  # payloads come hidden without payloads.read (Governance.approvals)
    return {
        "approvals": items,
        "next_cursor": approval_cursor(last) if last else None,
    }


APPROVALS = "/api/approvals/"


@router.post(
    "/approvals/{run_id:path}/{name}",  # a child run's id holds '/' (PARENT.step/child): its approvals too
    tags=["approvals"],
    **documented("decideApproval", Decided, 404),
    summary="Approve, reject or edit a request",
)
async def decide(
    run_id: str, name: str, body: Decision, request: Request, who: Principal = Depends(acting)
) -> dict[str, Any]:
    # Both may hold '/': a child run's id (PARENT.step/child) and a request's name (an output check's,
    # approval:output:STEP:.../CALL). Sent percent-encoded (as the dashboard does), each is one segment;
    # else a name starts with "approval:", so the first "/approval:" splits them.
    path = as_sent(request.scope, APPROVALS)
    if path == ELSEWHERE:  # routed here once decoded only: /api%2Fapprovals/... is no approval's path
        raise ApiError(
            404, "not_found", f"no such endpoint: {request.url.path} as sent has its '/' percent-encoded (%2F) before "
            "the run: send POST /api/approvals/RUN/NAME, RUN and NAME each percent-encoded as one segment",
        )  # fmt: skip
    sent = (path or APPROVALS)[len(APPROVALS) :].split("/")
    if len(sent) == 2:  # /api/approvals/RUN/NAME as sent
        run_id, name = unquote(sent[0]), unquote(sent[1])
    else:
        whole, sep, rest = f"{run_id}/{name}".partition("/" + APPROVAL_PREFIX)
        if sep:
            run_id, name = whole, APPROVAL_PREFIX + rest
    payload = body.payload if (body.edited or body.payload is not None) else None
    sent = await request.app.state.client.decide(
        run_id, name, approve=body.approve, comment=body.comment, payload=payload, request=body.request
    )
    return {"decided": sent, "approved": body.approve, "by": who.name}


@router.get(
    "/audit", tags=["audit"], **documented("listAudit", AuditLog), summary="Audit log entries, oldest first"
)
async def audit(
    request: Request,
    after: int = Query(default=0, ge=0, le=MAX_SEQ, description="Entries after this sequence number."),
    limit: int = Query(default=200, ge=1, le=5000),
    who: Principal = Depends(acting),
) -> dict[str, Any]:
    entries = await request.app.state.client.audit_log(after=after, limit=limit)
    return {
        "entries": [
            {
                "seq": e.seq,
                "ts": e.ts,
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "data": e.details(),
            }
            for e in entries
        ]
    }


@router.get(
    "/audit/verify",
    tags=["audit"],
    **documented("verifyAudit", AuditCheck),
    summary="Check the audit hash chain and run digests",
)
async def audit_verify(request: Request, who: Principal = Depends(acting)) -> dict[str, Any]:
    n, problem = await request.app.state.client.verify_audit()
    return {"entries": n, "intact": problem is None, "problem": problem}


class Switch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: str = Field(description="all, workflow, kind, provider, agent or connector")
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="What to switch off; `*` for the whole scope (explicitly). Not needed for scope `all`.",
    )
    mode: str = Field(default="pause", description="pause or cancel")
    reason: str = ""


@router.get(
    "/switches",
    tags=["kill switches"],
    **documented("listSwitches", SwitchList),
    summary="Kill switches that are on",
)
async def switches(request: Request, who: Principal = Depends(acting)) -> dict[str, Any]:
    await request.app.state.client.authorize("runs.read")
    return {"switches": await request.app.state.client.switches()}


@router.post(
    "/switches", tags=["kill switches"], **documented("setSwitch", SwitchList), summary="Switch something off"
)
async def set_switch(body: Switch, request: Request, who: Principal = Depends(acting)) -> dict[str, Any]:
    client = request.app.state.client
    if body.name is None and body.scope in ("workflow", "kind", "provider", "agent", "connector"):
        raise ApiError(
            422,
            "invalid_request",
            f"name the {body.scope} to switch off in 'name', or send name '*' to switch off every "
            f"{body.scope} (explicitly)",
        )
    await client.set_switch(body.scope, body.name or "*", mode=body.mode, reason=body.reason)
    return {"switches": await client.switches()}


@router.delete(
    "/switches/{scope}/{name:path}",
    tags=["kill switches"],
    **documented("clearSwitch", Woken, 400, 404),
    summary="Switch back on",
)
async def clear_switch(
    scope: str, name: str, request: Request, who: Principal = Depends(acting)
) -> dict[str, Any]:
    """A switch that is not on is 404 (a mistyped name must not look like the end of an incident)."""
    from ..governance.policy import switch_not_set

    client = request.app.state.client
    await client.authorize("killswitch.use", f"{scope}:{name}")
    on = await client.governance.switches()
    if f"{scope}:{name}" not in on:  # runs left parked by a switch cleared since go on, all the same
        await client.governance.wake_paused()
        raise ApiError(404, "not_found", switch_not_set(f"{scope}:{name}", on))
    woken = await client.clear_switch(scope, name)
    return {"woken": woken}
