"""Per-workflow policies over HTTP: list, read, set and remove (``podium.governance.policy.Policy``),
every version a policy had (from the audit log), and what a policy decides for a tool, a model
provider or an answer (a dry run of the checks made at call time).

The request body is checked against the ``Policy`` dataclass itself (its fields and their types), so a
field added to ``Policy`` is accepted here without a change. Reading needs ``workflows.read`` (the
history also ``audit.read``); setting and removing need ``policies.write`` (checked and audited by
the engine client).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from ..errors import ConfigError
from ..governance.identity import Principal
from ..governance.policy import Policy
from .auth import acting
from .errors import ApiError
from .openapi import documented

router = APIRouter(prefix="/api", tags=["policies"])

WORKFLOW = Path(description="A workflow name, or `*` for the default of every workflow.")


@functools.cache
def _adapter() -> Any:
    """A pydantic validator of ``Policy`` (None if its field types are beyond pydantic)."""
    from pydantic import TypeAdapter

    try:
        return TypeAdapter(Policy)
    except Exception:  # a field pydantic cannot describe: fall back to Policy(**body)
        return None


def _schema() -> dict[str, Any]:
    """The request body's JSON Schema, from ``Policy`` (a plain object if it cannot be derived)."""
    adapter = _adapter()
    try:
        schema: dict[str, Any] = adapter.json_schema() if adapter is not None else {}
    except Exception:
        schema = {}
    if not schema or "$defs" in schema:  # nested definitions would need rewriting for OpenAPI
        return {"type": "object", "additionalProperties": True}
    return {**schema, "additionalProperties": False}


class PolicyView(BaseModel):
    workflow: str
    policy: Policy


class PolicyList(BaseModel):
    policies: dict[str, Policy] = Field(description="By workflow name (`*`: the default).")


class PolicyDeleted(BaseModel):
    workflow: str
    deleted: bool = Field(description="False if no policy was set.")


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(Policy)]


def parse_policy(body: Any, workflow: str) -> Policy:
    """``body`` as a :class:`Policy`; every problem becomes a 422 that names the field."""
    from pydantic import ValidationError

    where = f"policy for {workflow!r}"
    if not isinstance(body, dict):
        raise ApiError(
            422,
            "invalid_policy",
            f"{where}: the body must be a JSON object with the fields: {', '.join(field_names())}",
        )
    unknown = sorted(set(body) - set(field_names()))
    if unknown:
        raise ApiError(
            422,
            "invalid_policy",
            f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; a policy has: {', '.join(field_names())}",
        )
    adapter = _adapter()
    try:
        policy: Policy = adapter.validate_python(body) if adapter is not None else Policy(**body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise ApiError(422, "invalid_policy", f"{where}: {problems}") from None
    except (ConfigError, TypeError, ValueError) as exc:
        raise ApiError(422, "invalid_policy", f"{where}: {exc}") from None
    for name, value in dataclasses.asdict(policy).items():
        if isinstance(value, float) and not math.isfinite(value):  # JSON's NaN/Infinity extensions
            raise ApiError(422, "invalid_policy", f"{where}: {name} must be a finite number, got {value}")
    return policy


def policy_json(policy: Policy) -> dict[str, Any]:
    return dataclasses.asdict(policy)


@router.get(
    "/policies",
    **documented("listPolicies", PolicyList),
    summary="Every policy set, by workflow (`*`: the default)",
)
async def list_policies(request: Request, who: Principal = Depends(acting)) -> dict[str, Any]:
    client = request.app.state.client
    await client.authorize("workflows.read", "policies")
    policies = await client.policies()
    return {"policies": {name: policy_json(p) for name, p in sorted(policies.items())}}


@router.get(
    "/policies/{workflow}",
    **documented("getPolicy", PolicyView, 404),
    summary="The policy set for a workflow",
)
async def get_policy(
    request: Request, workflow: str = WORKFLOW, who: Principal = Depends(acting)
) -> dict[str, Any]:
    client = request.app.state.client
    await client.authorize("workflows.read", f"workflow:{workflow}")
    policy = (await client.policies()).get(workflow)
    if policy is None:
        raise ApiError(
            404,
            "not_found",
            f"no policy is set for workflow {workflow!r}"
            + ("" if workflow == "*" else " (the default '*' applies, if set)")
            + f"; set one with PUT /api/policies/{workflow}",
        )
    return {"workflow": workflow, "policy": policy_json(policy)}


@router.put(
    "/policies/{workflow}",
    **documented("putPolicy", PolicyView, 422),
    summary="Set (replace) the policy of a workflow",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _schema()}}}},
)
async def put_policy(
    request: Request,
    workflow: str = WORKFLOW,
    body: Any = Body(),
    who: Principal = Depends(acting),
) -> dict[str, Any]:
    """Fields left out take their defaults (the whole policy is replaced). Needs `policies.write`."""
    client = request.app.state.client
    await client.authorize("policies.write", f"workflow:{workflow}")
    policy = parse_policy(body, workflow)
    await client.set_policy(workflow, policy)
    return {"workflow": workflow, "policy": policy_json(policy)}


@router.delete(
    "/policies/{workflow}",
    **documented("deletePolicy", PolicyDeleted),
    summary="Remove the policy of a workflow",
)
async def delete_policy(
    request: Request, workflow: str = WORKFLOW, who: Principal = Depends(acting)
) -> dict[str, Any]:
    client = request.app.state.client
    await client.authorize("policies.write", f"workflow:{workflow}")
    existed = workflow in await client.policies()
    if existed:
        await client.set_policy(workflow, None)
    return {"workflow": workflow, "deleted": existed}


# -- versions and decisions ------------------------------------------------------------------------


class PolicyVersion(BaseModel):
    seq: int = Field(description="The audit entry that set it.")
    ts: float
    by: str
    policy: Policy | None = Field(description="Null: the policy was removed.")


class PolicyHistory(BaseModel):
    workflow: str
    versions: list[PolicyVersion] = Field(description="Oldest first; the last one is in force.")


Outcome = Literal["allowed", "approval", "paused", "refused"]
#: The strictest outcome decides: a refusal fails the step; a pause (a ``pause`` kill switch) parks
#: the run until the switch is cleared, then the call is made; an approval asks a person first.
STRICTNESS = {"allowed": 0, "approval": 1, "paused": 2, "refused": 3}


class PolicyCheck(BaseModel):
    check: Literal["tool", "provider", "connector", "answer"]
    subject: str
    outcome: Outcome = Field(
        description="`allowed`; `approval` (a person approves each call); `paused` (a `pause` kill switch "
        "covers it: a run parks there and makes the call once the switch is cleared); `refused` (the step fails)."
    )
    reason: str


class PolicyDecision(BaseModel):
    workflow: str
    applies: list[str] = Field(description="The policies over the call (the workflow's or `*`, the agent's).")
    decision: Outcome = Field(description="The strictest outcome of the checks.")
    checks: list[PolicyCheck]
    not_checked: list[str] = Field(description="What only a run can tell (budgets, tone).")
    known: bool = Field(
        description="Whether a workflow of this name is served or deployed, or has a policy of its own; false: "
        "a name nothing knows (a typo?), answered by the default policy `*`."
    )
    deployed: bool = Field(
        default=True,
        description="Whether a run started by this name is under its own policy alone: in a store with users, "
        "only a deployed workflow is (any file may call itself by a name); false: the default policy `*` holds "
        "it too, and `applies` names both.",
    )


@router.get(
    "/policies/{workflow}/history",
    **documented("listPolicyVersions", PolicyHistory),
    summary="Every version of a workflow's policy, from the audit log",
)
async def policy_history(
    request: Request, workflow: str = WORKFLOW, who: Principal = Depends(acting)
) -> dict[str, Any]:
    """Each `policy.set` entry of the audit log for the workflow: when, by whom, and the policy."""
    client = request.app.state.client
    await client.authorize("workflows.read", f"workflow:{workflow}")
    await client.authorize("audit.read", f"workflow:{workflow}")
    versions = [
        {"seq": e.seq, "ts": e.ts, "by": e.actor, "policy": e.details().get("policy")}
        for e in await client.store.audit_for(f"workflow:{workflow}")
        if e.action == "policy.set"
    ]
    return {"workflow": workflow, "versions": versions}


@router.get(
    "/policies/{workflow}/decision",
    **documented("checkPolicy", PolicyDecision, 422),
    summary="What the policy decides for a tool, a provider or an answer",
)
async def policy_decision(
    request: Request,
    workflow: str = WORKFLOW,
    tool: str | None = Query(default=None, max_length=200, description="A tool a step or agent would call."),
    provider: str | None = Query(default=None, max_length=200, description="A model provider, e.g. `openai`."),
    agent: str | None = Query(default=None, max_length=200, description="The agent making the call, if any."),
    connector: str | None = Query(
        default=None, max_length=300, description="A connector operation a step would call, as `NAME.OPERATION`."
    ),
    answer: str | None = Query(default=None, max_length=10_000, description="A model answer to check."),
    who: Principal = Depends(acting),
) -> dict[str, Any]:
    """The checks a run makes at call time, without a run: the allowed tools and providers, tools
    needing approval, connector operations (allowed, needing approval, switched off), kill switches
    (a ``pause`` one answers ``paused``: a run parks, it does not fail), and banned content. Nothing
    is audited."""
    from ..governance.policy import over_call, tool_refusal
    from ..governance.validators import BannedContent

    client = request.app.state.client
    await client.authorize("workflows.read", f"workflow:{workflow}")
    if agent is not None and not agent.strip():
        raise ApiError(
            422, "invalid_request", "query parameter 'agent' is empty: name the agent making the call (?agent=NAME) "
            "or leave it out for a call a workflow's step makes"
        )
    if not (tool or provider or answer or connector):
        calls = "tool=NAME, provider=NAME, connector=NAME.OPERATION or answer=TEXT"
        raise ApiError(
            422, "invalid_request",
            f"'agent' names who makes the call, not the call: add the call to check, e.g. ?agent={agent}&tool=NAME "
            f"(or {calls})" if agent else f"give a tool, a provider, a connector or an answer to check ({calls}), e.g. ?tool=search",
        )  # fmt: skip
    policies = await client.policies()
    deployed = await _deployed(client, workflow)  # else its name's policy only restricts it: '*' holds it too
    scoped = over_call(policies, workflow, agent or None, deploy=None if deployed else "podium workflows deploy FILE")
    checks: list[dict[str, Any]] = []
    service = client.governance
    if tool:
        refused = tool_refusal(scoped, tool)
        approvers = [w for w, p in scoped if tool in p.approve_tools]
        # the run's own switches (not a refusal's): its next step parks, or the run is cancelled
        switched = [] if refused else _switched(service, "tool", tool, service.switched_off(workflow, agent=agent or None))
        checks.append(
            switched[0] if switched
            else _check("tool", tool, refused) if refused or not approvers
            else {"check": "tool", "subject": tool, "outcome": "approval",
                  "reason": f"{approvers[0]} asks a person to approve each call of {tool!r}"}
        )  # fmt: skip
    if connector:
        checks.append(_connector_check(client, scoped, connector, workflow, agent or None))
    if provider:
        checks.append(_provider_check(service, scoped, provider, workflow, agent or None))
    if answer:
        checks.append(await _answer_check(scoped, answer, BannedContent))
    return {
        "workflow": workflow,
        "applies": [w for w, _ in scoped],
        "decision": max((c["outcome"] for c in checks), key=STRICTNESS.__getitem__),
        "checks": checks,
        "not_checked": ["budgets (they depend on a run's spending)", "tone (judged by a model at run time)"],
        "known": await _known(client, workflow, policies),
        "deployed": deployed,
    }


async def _deployed(client: Any, workflow: str) -> bool:
    """Whether a run of ``workflow`` started by name would be under its own policy alone: it has a
    deployed version (any other definition under its name is refused), or the store has no users."""
    from ..engine.versions import ACTIVE

    return not client.governance.users_exist or await client.store.kv_get(ACTIVE, workflow) is not None


async def _known(client: Any, workflow: str, policies: dict[str, Any]) -> bool:
    """Whether a workflow called ``workflow`` is served or deployed here, or has a policy of its own."""
    from ..engine.versions import ACTIVE

    if workflow in policies or workflow in client.workflows():
        return True
    return await client.store.kv_get(ACTIVE, workflow) is not None


def _connector_check(
    client: Any, scoped: list[tuple[str, Policy]], subject: str, workflow: str, agent: str | None
) -> dict[str, Any]:
    """A connector operation (``NAME.OPERATION``) as a run's call would be checked (its switches,
    and those over the whole run: ``all``, the workflow, the agent)."""
    from ..governance.enforcement import connector_switch
    from ..governance.policy import connector_refusal, names_connector

    name, _, operation = subject.partition(".")
    if not name or not operation:
        raise ApiError(422, "invalid_request", f"connector {subject!r}: give NAME.OPERATION, e.g. ?connector=crm.getContact")
    refused = connector_refusal(scoped, name, operation)
    if refused:  # whatever switch is on: a run parked by it would meet this refusal once it is cleared
        return _check("connector", subject, refused)
    switched = connector_switch(client.governance, workflow, name, agent)
    if switched is not None:  # as check_connector: `pause` parks the run there, `cancel` fails the step
        return _switched(client.governance, "connector", subject, switched[1], switched[0])[0]
    approvers = [w for w, p in scoped if names_connector(p.approve_connectors, name, operation)]
    if not approvers:
        return _check("connector", subject, None)
    return {"check": "connector", "subject": subject, "outcome": "approval",
            "reason": f"{approvers[0]} asks a person to approve each call of {subject!r}"}  # fmt: skip


def _provider_check(
    service: Any, scoped: list[tuple[str, Policy]], provider: str, workflow: str, agent: str | None
) -> dict[str, Any]:
    """A model call as a run makes it: a provider switch refuses it whatever its mode
    (``check_model``), as do the policies; an agent's own switch (``check_agent``) and the run's
    switches park the run (``pause``) or fail it (``cancel``)."""
    from ..governance.policy import provider_refusal

    off = service.switch(f"provider:{provider}") or service.switch("provider:*")
    if off is not None:
        why = f"provider {provider!r} is switched off ({off.get('reason') or 'no reason given'}); {_clear(service, off)}"
        return _check("provider", provider, why)
    refused = provider_refusal(scoped, provider)
    own = (service.switch(f"agent:{agent}") or service.switch("agent:*")) if agent else None
    if refused or not (own or service.switched_off(workflow)):
        return _check("provider", provider, refused)
    return _switched(service, "provider", provider, own or service.switched_off(workflow), f"agent {agent!r}" if own else None)[0]


def _switched(
    service: Any, kind: str, subject: str, off: dict[str, Any] | None, what: str | None = None
) -> list[dict[str, Any]]:
    """The check a kill switch ``off`` makes of a call (none without a switch): ``paused`` for a
    ``pause`` switch (a run parks and goes on once it is cleared), ``refused`` for a ``cancel``."""
    if off is None:
        return []
    key = _key(service, off)
    what = what or ("everything" if key == "all:*" else f"{key.replace(':', ' ', 1)}")
    why = f"{what} is switched off ({off.get('reason') or 'no reason given'}, by {off.get('by')})"
    if off.get("mode") == "cancel":
        return [_check(kind, subject, f"{why}: the step fails; {_clear(service, off)}")]
    return [{"check": kind, "subject": subject, "outcome": "paused",
             "reason": f"{why}: a run parks there and makes the call once the switch is cleared; {_clear(service, off)}"}]  # fmt: skip


def _key(service: Any, off: dict[str, Any]) -> str:
    """The ``scope:name`` a switch is stored under (the lookups answer the switch itself)."""
    return next((k for k, v in (service.switch_cache or {}).items() if v is off), "?:?")


def _clear(service: Any, off: dict[str, Any]) -> str:
    scope, _, name = _key(service, off).partition(":")
    how = scope if scope == "all" else f"{scope} --all" if name == "*" else f"{scope} {name}"
    return f"clear it with 'podium killswitch clear {how}'"


def _check(kind: str, subject: str, refused: str | None) -> dict[str, Any]:
    if refused:
        return {"check": kind, "subject": subject, "outcome": "refused", "reason": refused}
    return {"check": kind, "subject": subject, "outcome": "allowed", "reason": "no policy over the call forbids it"}


async def _answer_check(scoped: list[tuple[str, Policy]], answer: str, banned: Any) -> dict[str, Any]:
    subject = answer[:80] + ("…" if len(answer) > 80 else "")
    for who_, policy in scoped:
        problem = await banned(policy.banned).check(answer) if policy.banned else None
        if problem:
            outcome = "approval" if policy.on_violation == "approval" else "refused"
            return {"check": "answer", "subject": subject, "outcome": outcome, "reason": f"{who_}: the answer {problem}"}
    return {"check": "answer", "subject": subject, "outcome": "allowed", "reason": "no banned content"}
