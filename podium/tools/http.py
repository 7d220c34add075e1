"""HTTP endpoints as tools: arguments go in the URL template, the query string or a JSON body."""

from __future__ import annotations

import re
import string
from typing import Any

from ..models._errors import ToolError
from ..models._http import RETRYABLE_STATUS, ClientPool, httpx_module, retry_after
from ._base import Tool


class HttpTool(Tool):
    """Call ``method url`` with the arguments; the answer (JSON or text) is the tool's result.

    ``url`` may name arguments: ``https://api.example.com/orders/{order_id}``. The other arguments go
    in the query string for GET and DELETE, else in a JSON body. HTTP 429 and 5xx are retryable
    :class:`~podium.models.ToolError`s carrying Retry-After; other 4xx are final.

    :param parameters: JSON Schema of the arguments (the model sees it).
    """

    def __init__(
        self,
        name: str,
        url: str,
        *,
        method: str = "POST",
        description: str = "",
        parameters: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
            raise ValueError(f"tool name {name!r}: use 1-64 letters, digits, '_' or '-'")
        self.name = name
        self.url = url
        self.method = method.upper()
        self.description = description
        placeholders = [f for _, f, _, _ in string.Formatter().parse(url) if f]
        self.parameters = parameters or {
            "type": "object",
            "properties": {p: {"type": "string"} for p in placeholders},
            "required": placeholders,
        }
        self._placeholders = set(placeholders)
        self.headers = dict(headers or {})
        self._pool = ClientPool(timeout=timeout)

    async def call(self, arguments: dict[str, Any]) -> Any:
        httpx = httpx_module()
        args = dict(arguments or {})
        try:
            url = self.url.format(**{k: args.pop(k) for k in self._placeholders})
        except KeyError as exc:
            raise ToolError(f"tool {self.name!r} needs the argument {exc.args[0]!r}") from None
        in_query = self.method in ("GET", "DELETE", "HEAD")
        try:
            response = await self._pool.get().request(
                self.method,
                url,
                params=args if in_query and args else None,
                json=None if in_query else args,
                headers=self.headers,
            )
        except httpx.TransportError as exc:
            raise ToolError(f"tool {self.name!r}: cannot reach {url}: {exc!r}", retryable=True) from exc
        if response.status_code >= 400:
            raise ToolError(
                f"tool {self.name!r}: {self.method} {url} answered HTTP {response.status_code}: "
                f"{response.text[:300]}",
                retryable=response.status_code in RETRYABLE_STATUS,
                retry_after=retry_after(response.headers),
            )
        if "json" in response.headers.get("content-type", ""):
            try:
                return response.json()
            except ValueError as exc:
                raise ToolError(
                    f"tool {self.name!r}: {self.method} {url} answered invalid JSON: {response.text[:300]!r}",
                    retryable=True,
                ) from exc
        return response.text

    async def aclose(self) -> None:
        await self._pool.aclose()
