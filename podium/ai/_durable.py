"""Every model, tool and classifier call of the AI layer goes through :func:`durable`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ..engine.context import StepContext

T = TypeVar("T")


async def durable(
    ctx: StepContext | None,
    fn: Callable[..., Awaitable[T]],
    *args: Any,
    name: str,
    trace: Mapping[str, Any] | None = None,
) -> T:
    """``await ctx.call(fn, *args, name=name)``: logged once, never repeated on retry or resume.
    ``trace`` (a prompt, arguments) is kept with the record for the run trace, redacted.

    Without a context (a script, a notebook, a test) the call simply runs.
    """
    if ctx is None:
        return await fn(*args)
    return await ctx.call(fn, *args, name=name, trace=trace)
