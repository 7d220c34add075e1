"""A connector's operations as agent tools: each operation is a :class:`~podium.tools.Tool`."""

from __future__ import annotations

from typing import Any

from ..errors import ConnectorError
from ..models._errors import ToolError
from ..resilience import NO_RETRIES
from ..tools._base import Tool, call_key
from ._base import Connector, Operation


class OperationTool(Tool):
    """One operation of a connector as a tool named ``NAME_OPERATION``. An agent calls it through
    ``podium.ai`` (a durable, audited tool call); the connector's breaker and rate limit apply, and
    its retries are left to the tool layer."""

    def __init__(self, connector: Connector, name: str, op: Operation) -> None:
        self.connector = connector
        self.operation = op.name
        self.connector_call = (name, op.name)
        """Which connector operation this tool is: a run's connector policies and kill switches
        apply to it as to ``ctx.connector(name).call(operation, ...)``."""
        self.name = f"{name}_{op.name}"[:64]
        self.description = op.description or f"{op.name} on {name}"
        self.parameters = op.input

    def deferred_calls(self, arguments: dict[str, Any]) -> list[tuple[str, str]]:
        """The later calls these arguments record (a ``transact``'s outbox messages): the run's
        connector policies govern them as they govern this call."""
        return self.connector.deferred_calls(self.operation, dict(arguments or {}))

    async def call(self, arguments: dict[str, Any]) -> Any:
        try:
            return await self.connector.guarded_call(
                self.operation, dict(arguments or {}), idempotency_key=call_key(), label=self.name, retry=NO_RETRIES
            )  # the key of this durable tool call: a write the tool layer retries applies once
        except ConnectorError as exc:
            raise ToolError(str(exc), retryable=exc.retryable, retry_after=exc.retry_after) from exc


def connector_tools(connector: Connector, name: str, *, only: list[str] | None = None) -> list[Tool]:
    """The operations of ``connector`` (or those in ``only``) as tools for an agent."""
    return [OperationTool(connector, name, op) for op in connector.operations() if only is None or op.name in only]
