"""A Slack-compatible webhook connector: the example of docs/connectors.md ("a new connector in
under 60 lines"). Kept here, tested by tests/connectors/test_custom_connector.py."""

from __future__ import annotations

from typing import Any

import httpx

from podium.connectors import Connector, ConnectorError, Operation, register_kind


class WebhookConnector(Connector):
    kind = "webhook"

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self.client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    def operations(self) -> list[Operation]:
        return [
            Operation(
                name="post",
                description="Post a message to the channel.",
                input={
                    "type": "object",
                    "properties": {"text": {"type": "string"}, "channel": {"type": "string"}},
                    "required": ["text"],
                },
            )
        ]

    async def call(self, operation: str, arguments: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
        self.operation(operation)  # an unknown operation is a non-retryable ConnectorError
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        try:
            response = await self.client.post(self.url, json=arguments, headers=headers)
        except httpx.TransportError as exc:
            raise ConnectorError(f"webhook unreachable: {type(exc).__name__}", retryable=True) from exc
        if response.status_code >= 400:
            raise ConnectorError(
                f"webhook answered HTTP {response.status_code}",
                retryable=response.status_code == 429 or response.status_code >= 500,
                retry_after=float(response.headers.get("Retry-After", 0)) or None,
                status=response.status_code,
            )
        return response.json() if response.content else None

    async def close(self) -> None:
        await self.client.aclose()


register_kind("webhook", WebhookConnector, replace=True)
