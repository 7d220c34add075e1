"""Typed Python functions as tools: the JSON Schema comes from the signature, the description from
the docstring, and arguments are validated (and coerced) by pydantic before the call."""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Callable
from typing import Any

from ..models._errors import ToolError
from ._base import Tool

_PARAM_DOC = re.compile(r"^\s*(?::param\s+(\w+)\s*:|(\w+)\s*(?:\([^)]*\))?\s*:)\s*(.+)$")


def _docs(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """The summary of a docstring, and per-parameter text from ``:param x:`` or ``Args:`` sections."""
    doc = inspect.getdoc(fn) or ""
    summary = doc.split("\n\n")[0].replace("\n", " ").strip()
    params: dict[str, str] = {}
    in_args = False
    for line in doc.splitlines():
        if line.strip() in ("Args:", "Arguments:", "Parameters:"):
            in_args = True
            continue
        m = _PARAM_DOC.match(line)
        if m and (m.group(1) or in_args):
            params[m.group(1) or m.group(2)] = m.group(3).strip()
    return summary, params


class FunctionTool(Tool):
    """A Python function (sync or async) as a tool. Build with :func:`tool`."""

    def __init__(
        self, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
    ) -> None:
        from pydantic import ConfigDict, create_model

        self.fn = fn
        self.name = name or fn.__name__
        summary, param_docs = _docs(fn)
        self.description = description if description is not None else summary
        hints = _hints(fn)
        fields: dict[str, Any] = {}
        for p in inspect.signature(fn).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            from pydantic import Field

            ann = hints.get(p.name, Any)
            default = ... if p.default is p.empty else p.default
            fields[p.name] = (ann, Field(default, description=param_docs.get(p.name)))
        self._model = create_model(f"{self.name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
        schema = self._model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        self.parameters = schema
        self.is_async = inspect.iscoroutinefunction(fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function itself, as if it were not a tool."""
        return self.fn(*args, **kwargs)

    async def call(self, arguments: dict[str, Any]) -> Any:
        from pydantic import ValidationError

        try:
            args = self._model.model_validate(arguments or {})
        except ValidationError as exc:
            detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ToolError(f"tool {self.name!r} got invalid arguments: {detail}") from None
        kwargs = {k: getattr(args, k) for k in type(args).model_fields}
        try:
            if self.is_async:
                return await self.fn(**kwargs)
            return await asyncio.to_thread(self.fn, **kwargs)
        except ToolError:
            raise
        except Exception as exc:
            # Tool.call fails with ToolError; the function's own error is its cause. Retryable as
            # Podium reads any error: its ``retryable`` flag, else connection errors and timeouts.
            flag = getattr(exc, "retryable", None)
            raise ToolError(
                f"tool {self.name!r} failed: {type(exc).__name__}: {exc}",
                retryable=bool(flag) if flag is not None else isinstance(exc, TimeoutError | ConnectionError),
                retry_after=getattr(exc, "retry_after", None),
            ) from exc


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(fn, include_extras=True)  # Annotated constraints are checked too
    except Exception:
        return {}


def tool(
    fn: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None
) -> Any:
    """Make a typed function a :class:`Tool`: ``@tool`` or ``@tool(name="search")``."""

    def wrap(f: Callable[..., Any]) -> FunctionTool:
        return FunctionTool(f, name=name, description=description)

    return wrap(fn) if fn is not None else wrap
