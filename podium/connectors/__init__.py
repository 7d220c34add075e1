"""Connectors: the business systems a workflow acts in (databases, REST APIs, message brokers), as
typed operations.

::

    from podium.connectors import open_connector

    crm = open_connector("openapi", spec="crm.yaml", base_url="https://crm.example.com")
    client = Client("sqlite:///podium.db", connectors={"crm": crm})

    @wf.step
    async def update(ctx, contact):
        return await ctx.connector("crm").call("update_contact", {"id": contact["id"], "body": contact})

Every call made through ``ctx.connector(...)`` is a durable sub-step (never repeated once it has
succeeded), audited without its values, retried with backoff that honours ``Retry-After``, and
behind the connector's circuit breaker. Its result is mapped (field mappings) and checked against
the operation's contract before the step sees it; a result that drifted is quarantined, and the run
parks, fails the step or skips it per ``on_drift``. See docs/connectors.md.
"""

from __future__ import annotations

from ..errors import ConnectorCircuitOpen, ConnectorDrift, ConnectorError
from ._base import BoundConnector, Connector, Operation, arguments_hash
from ._broker import BrokerConnector, Delivery, Message
from ._contracts import Contracts, Drift, diff, learn_schema
from ._mapping import FieldMapping
from ._quarantine import QuarantineItem
from ._registry import available_kinds, open_connector, register_kind
from ._stats import ConnectorStats
from ._tools import OperationTool, connector_tools
from .consumer import Consumer


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
    "BrokerConnector",
    "Connector",
    "ConnectorCircuitOpen",
    "ConnectorDrift",
    "ConnectorError",
    "ConnectorStats",
    "Consumer",
    "Contracts",
    "Delivery",
    "Drift",
    "FieldMapping",
    "Message",
    "Operation",
    "OperationTool",
    "Outbox",
    "OutboxRelay",
    "QuarantineItem",
    "arguments_hash",
    "available_kinds",
    "connector_tools",
    "diff",
    "learn_schema",
    "open_connector",
    "register_kind",
]
