"""Connector health for the dashboard's Connectors page: ``GET /api/connectors``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from ..governance.identity import Principal
from .auth import acting
from .openapi import documented

router = APIRouter(prefix="/api")


class ConnectorHealthList(BaseModel):
    connectors: list[dict[str, Any]]
    """Per connector: kind, health, breaker, calls, errors, latency percentiles, token expiry,
    drift count and quarantine depth."""


PROBE_FRESH = 10.0
"""Seconds a probe of a system answers for every reader of ``GET /api/connectors``."""


@router.get(
    "/connectors",
    tags=["connectors"],
    **documented("listConnectorHealth", ConnectorHealthList, 422),
    summary="Health of every connector (held and registered)",
)
async def connectors(
    request: Request,
    check: bool = Query(
        default=True, description="Probe each system (health(), at most once per 10 s for all readers); false: figures only."
    ),
    who: Principal = Depends(acting),
) -> dict[str, Any]:
    from ..connectors._health import statuses

    client = request.app.state.client
    await client.authorize("workflows.read")
    # Any reader may poll this page: each system is probed at most once per PROBE_FRESH seconds.
    return {"connectors": await statuses(client, check=check, timeout=3.0, fresh=PROBE_FRESH)}
