"""The webhooks that YAML workflows declare (``triggers: [{webhook: /hooks/tickets}]``): a request to
``/hooks/...`` with the declared method starts one run of the workflow, with the JSON body as its
input (or the trigger's ``input``). Same authorization as ``POST /api/runs`` (``runs.start`` on the
workflow); an ``Idempotency-Key`` header makes a repeated call find its run instead of starting
another."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel

from ..errors import InputValidationError
from ..governance import limits
from ..governance.identity import Principal
from .auth import acting
from .errors import ApiError
from .openapi import documented
from .routes_runs import key_header

router = APIRouter(tags=["events"])


class WebhookStarted(BaseModel):
    run_id: str
    workflow: str
    duplicate: bool
    """True when the Idempotency-Key had already started this run (nothing new started)."""


async def _call(request: Request, path: str, idempotency_key: str | None) -> dict[str, Any]:
    from .triggers import derived_id, refuse_taken_keys

    app = request.app
    method, full = request.method, f"/hooks/{path}"
    found = app.state.triggers.webhooks.get((method, full))
    client = app.state.client
    if found is None:
        await client.authorize("runs.start", f"webhook:{full}")  # who may not start runs learns nothing more
        if clash := app.state.triggers.hook_conflicts.get((method, full)):
            raise ApiError(
                409, "webhook_conflict", f"workflows {', '.join(map(repr, clash))} all declare the webhook {method} "
                f"{full}, so none of them is started by it; deploy all but one with another path",
            )
        known = ", ".join(f"{m} {p}" for m, p in sorted(app.state.triggers.webhooks)) or "none"
        raise ApiError(404, "not_found", f"no workflow declares the webhook {method} {full} (declared here: {known})")
    workflow, template = found
    await client.authorize("runs.start", f"workflow:{workflow}")
    raw = await request.body()
    try:  # the shared limits whatever the content type says (the middleware checks JSON types only)
        body = limits.loads(raw, where="the body") if raw.strip() else None
    except limits.JsonProblem as exc:
        raise InputValidationError(f"{method} {full}: {exc}") from None
    except ValueError:
        raise InputValidationError(f"the body of {method} {full} is not JSON; send the run's input as JSON") from None
    key = idempotency_key or uuid.uuid4().hex
    rid = derived_id("webhook", method, full, workflow, key)
    if await client.store.get_run(rid) is not None:
        await refuse_taken_keys(client, [rid], key)  # another sender's run: 409, not "duplicate"
        return {"run_id": rid, "workflow": workflow, "duplicate": True}
    handle = await client.start(workflow, body if template is None else template, run_id=rid)
    if not handle.created:  # another call with this key started it a moment ago: whose?
        await refuse_taken_keys(client, [rid], key, {rid})
    return {"run_id": rid, "workflow": workflow, "duplicate": not handle.created}


def _route(method: str) -> Any:
    @router.api_route(
        "/hooks/{path:path}",
        methods=[method],
        **documented(f"callWebhook{method.title()}", WebhookStarted, 404, 409, 422, status=202),
        summary=f"A workflow's webhook ({method})",
    )
    async def call(
        request: Request,
        path: str,
        idempotency_key: str | None = Header(default=None, description="The same key never starts a second run."),
        who: Principal = Depends(acting),
    ) -> dict[str, Any]:
        return await _call(request, path, key_header(idempotency_key))

    return call


for _method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
    _route(_method)
