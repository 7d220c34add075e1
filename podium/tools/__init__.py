"""Tools for models and steps: typed Python functions, HTTP endpoints, and MCP servers.

Inside a workflow, call tools through :func:`podium.ai.call_tool` or give them to an
:class:`podium.ai.Agent`, so that each call is a durable step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ._base import Tool, ToolResult, Toolset
from .http import HttpTool
from .python import FunctionTool, tool


def as_tool(obj: Tool | Callable[..., Any]) -> Tool:
    """A :class:`Tool` for a tool, or for a typed function."""
    if isinstance(obj, Tool):
        return obj
    if callable(obj):
        return FunctionTool(obj)
    raise TypeError(f"not a tool: {obj!r}; pass a Tool, a Toolset or a typed function")


async def resolve_tools(items: Sequence[Tool | Toolset | Callable[..., Any]]) -> dict[str, Tool]:
    """Tools by name, listing each :class:`Toolset`. Two tools of one name are an error."""
    out: dict[str, Tool] = {}
    for item in items:
        found = await item.tools() if isinstance(item, Toolset) else [as_tool(item)]
        for t in found:
            if t.name in out:
                raise ValueError(
                    f"two tools are named {t.name!r}; give one a prefix (MCPToolset(prefix=...))"
                )
            out[t.name] = t
    return out


def __getattr__(name: str) -> Any:
    if name in ("MCPToolset", "MCPTool"):
        from . import mcp

        return getattr(mcp, name)
    raise AttributeError(name)


__all__ = [
    "FunctionTool",
    "HttpTool",
    "MCPTool",
    "MCPToolset",
    "Tool",
    "ToolResult",
    "Toolset",
    "as_tool",
    "resolve_tools",
    "tool",
]
