"""Connectors: the business systems a workflow acts in (databases, REST APIs), as typed operations.

::

    from podium.connectors import open_connector

    crm = open_connector("openapi", spec="crm.yaml", base_url="https://crm.example.com")
    client = Client("sqlite:///podium.db", connectors={"crm": crm})

    @wf.step
    async def update(ctx, contact):
        return await ctx.connector("crm").call("update_contact", {"id": contact["id"], "body": contact})

Every call made through ``ctx.connector(...)`` is a durable sub-step (never repeated once it has
succeeded), audited without its values, retried with backoff that honours ``Retry-After``, and
behind the connector's circuit breaker. See docs/connectors.md.
"""

from __future__ import annotations

from ..errors import ConnectorCircuitOpen, ConnectorError
from ._base import BoundConnector, Connector, Operation, arguments_hash
from ._registry import available_kinds, open_connector, register_kind
from ._stats import ConnectorStats
from ._tools import OperationTool, connector_tools


def __getattr__(name: str) -> object:
    """``Outbox`` and ``OutboxRelay`` on first use: they import SQLAlchemy (the connectors extra)."""
    if name == "Outbox":
        from .outbox import Outbox

        return Outbox
    if name == "OutboxRelay":
        from .relay import OutboxRelay

        return OutboxRelay
    raise AttributeError(f"module 'podium.connectors' has no attribute {name!r}")


__all__ = [
    "BoundConnector",
    "Connector",
    "ConnectorCircuitOpen",
    "ConnectorError",
    "ConnectorStats",
    "Operation",
    "OperationTool",
    "Outbox",
    "OutboxRelay",
    "arguments_hash",
    "available_kinds",
    "connector_tools",
    "open_connector",
    "register_kind",
]
