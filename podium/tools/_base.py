"""The tool interface: :class:`Tool` (one callable thing with a JSON Schema) and :class:`Toolset`
(a source of tools, such as an MCP server)."""

from __future__ import annotations

import abc
import contextvars
from dataclasses import dataclass, field
from typing import Any

from ..models._base import ToolSpec

_CALL_KEY: contextvars.ContextVar[str | None] = contextvars.ContextVar("podium_tool_call_key", default=None)


def call_key() -> str | None:
    """The idempotency key of the tool call being made (inside :meth:`Tool.call`), or None outside a
    run. It is the same on every retry and resume of that call: a tool that writes to a system
    passes it on (the connector tools send it as ``Idempotency-Key``), so a retried write applies once."""
    return _CALL_KEY.get()


def set_call_key(key: str | None) -> contextvars.Token[str | None]:
    """Make ``key`` the current tool call's (:func:`call_key`); give the token to ``reset_call_key``."""
    return _CALL_KEY.set(key)


def reset_call_key(token: contextvars.Token[str | None]) -> None:
    _CALL_KEY.reset(token)


class Tool(abc.ABC):
    """Something a model or a step can call with a JSON object of arguments."""

    name: str = ""
    description: str = ""
    parameters: dict[str, Any] = {"type": "object", "properties": {}}
    """JSON Schema of the arguments object."""

    @property
    def spec(self) -> ToolSpec:
        """What a model is told about this tool."""
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)

    @abc.abstractmethod
    async def call(self, arguments: dict[str, Any]) -> Any:
        """Run the tool. Raises :class:`~podium.models.ToolError` on failure (``retryable`` if transient)."""

    async def aclose(self) -> None:
        """Release connections."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class Toolset(abc.ABC):
    """A source of several tools, listed when first needed (an MCP server, a plug-in)."""

    @abc.abstractmethod
    async def tools(self) -> list[Tool]:
        """The tools, as they are now."""

    async def aclose(self) -> None:
        """Release connections or processes."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolResult:
    """The logged outcome of one tool call. A failure is a value too, so that replays see the same."""

    name: str
    call_id: str = ""
    ok: bool = True
    value: Any = None
    """The tool's result, as JSON data (other values are stored as their text)."""
    error: str | None = None
    latency: float = 0.0
    trail: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    """Failed attempts before the final outcome."""

    def __post_init__(self) -> None:
        if not isinstance(self.trail, tuple):
            object.__setattr__(self, "trail", tuple(self.trail))

    @property
    def text(self) -> str:
        """What a model is shown: the value as text, or the error."""
        import json

        if not self.ok:
            return f"error: {self.error}"
        if isinstance(self.value, str):
            return self.value
        return json.dumps(self.value, default=str, ensure_ascii=False)
