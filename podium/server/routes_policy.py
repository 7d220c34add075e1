"""Per-workflow policies over HTTP: list, read, set and remove (``podium.governance.policy.Policy``).

The request body is checked against the ``Policy`` dataclass itself (its fields and their types), so a
field added to ``Policy`` is accepted here without a change. Reading needs ``workflows.read``;
setting and removing need ``policies.write`` (checked and audited by the engine client).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

from fastapi import APIRouter, Body, Depends, Path, Request
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
