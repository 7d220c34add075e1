"""``call_tool``: one tool call as a durable step; failures are logged as values."""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

from .. import _serde
from ..errors import SerializationError
from ..models import ToolError
from ..resilience import Backoff, retry_call
from ..secret import redact_known
from ..tools import Tool, ToolResult, as_tool
from ..tools._base import reset_call_key, set_call_key
from ._durable import durable

if TYPE_CHECKING:
    from ..engine.context import StepContext

TOOL_RETRY = Backoff(max_attempts=3, initial=0.5)


async def run_tool(
    tool: Tool, arguments: dict[str, Any], call_id: str = "", retry: Backoff = TOOL_RETRY, key: str | None = None
) -> ToolResult:
    """Call ``tool``, retrying transient failures; the outcome, failed or not, is a :class:`ToolResult`.
    ``key`` is the call's idempotency key, the same on every attempt (``podium.tools.call_key()``
    inside the tool)."""
    trail: list[dict[str, Any]] = []
    from ..governance.limits import value_problem

    # A model writes these arguments (or a step's output fills them): NaN passes every limit a tool
    # puts on a number (amount > 100 and amount <= 100 are both false), and JSON has no Infinity.
    problem = value_problem(arguments, where="arguments", surrogates=False)
    if problem:
        return ToolResult(
            name=tool.name, call_id=call_id, ok=False, latency=0.0,
            error=f"tool {tool.name!r} was not called: {problem}",
        )  # fmt: skip

    def failed(exc: BaseException, attempt: int, delay: float | None) -> None:
        entry: dict[str, Any] = {
            "tool": tool.name,
            "attempt": attempt,
            "error": redact_known(f"{type(exc).__name__}: {exc}")[:500],
        }
        if delay is not None:
            entry["retry_in"] = round(delay, 3)
        trail.append(entry)

    t0 = time.monotonic()
    token = set_call_key(key)
    try:
        value = await retry_call(lambda: tool.call(arguments), retry, on_failure=failed)
    except Exception as exc:
        return ToolResult(
            name=tool.name,
            call_id=call_id,
            ok=False,
            # a remote answer may echo a stored secret: masked before the model, the log or the store see it
            error=redact_known(f"{type(exc).__name__}: {exc}")[:2000],
            latency=time.monotonic() - t0,
            trail=tuple(trail[:-1]),
        )
    finally:
        reset_call_key(token)
    try:
        _serde.dumps(value)
    except SerializationError:
        value = str(value)
    return ToolResult(
        name=tool.name, call_id=call_id, value=value, latency=time.monotonic() - t0, trail=tuple(trail)
    )


def other_names(tool: Any) -> tuple[str, ...]:
    """A tool's names other than the one called: an MCP tool's name on its server (a workflow file's
    ``prefix:`` renames what the model calls; a policy naming the server's name must still hold)."""
    remote = getattr(tool, "remote_name", None)
    return (remote,) if isinstance(remote, str) and remote and remote != tool.name else ()


def call_key_for(ctx: StepContext | None, label: str) -> str | None:
    """The idempotency key of the next durable call ``label`` of ``ctx``'s step (None outside a run):
    the step's key and the call's label, stable across retries and resumes, as a connector call's."""
    return None if ctx is None else f"{ctx.idempotency_key}/{ctx.next_call_name(label)}"


def live_tool(ctx: StepContext | None) -> Any:
    """:func:`run_tool` as a durable call runs it: each real call (not a replay) is audited, with the
    arguments' hash and the error with credentials masked."""
    from ..governance.enforcement import audit
    from ..secret import redact

    async def tool_call(
        tool: Tool, arguments: dict[str, Any], call_id: str = "", retry: Backoff = TOOL_RETRY, key: str | None = None
    ) -> ToolResult:
        result = await run_tool(tool, arguments, call_id, retry, key)
        args = json.dumps(arguments, sort_keys=True, default=str, ensure_ascii=False)
        await audit(
            ctx,
            "tool.call",
            tool=tool.name,
            arguments_hash=hashlib.sha256(args.encode()).hexdigest(),
            ok=result.ok,
            # A tool's error may quote what it was sent; the audit log is chained and cannot forget.
            error=None if result.error is None else redact(result.error),
            latency=round(result.latency, 4),
        )
        return result

    tool_call.__name__ = "run_tool"
    return tool_call


async def call_tool(
    ctx: StepContext | None,
    tool: Tool | Any,
    arguments: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    retry: Backoff = TOOL_RETRY,
) -> Any:
    """Call a tool from a step, durably (logged as ``step/tool.NAME``); returns its value.

    Transient failures (``ToolError(retryable=True)``, timeouts) are retried with backoff; a final
    failure raises :class:`~podium.models.ToolError`.
    """
    from ..governance.enforcement import check_tool

    t = as_tool(tool)
    label = name or f"tool.{t.name}"
    args = dict(arguments or {})
    if ctx is not None and not ctx.replaying(label):  # a replayed call was checked when it ran
        args = await check_tool(
            ctx, t.name, args, call=label, connector=getattr(t, "connector_call", None), deferred=getattr(t, "deferred_calls", None),
            also=other_names(t),
        )
    key = call_key_for(ctx, label)
    result = await durable(ctx, live_tool(ctx), t, args, "", retry, key, name=label, trace={"kind": "tool", "tool": t.name, "arguments": args})
    if not result.ok:
        raise ToolError(f"tool {t.name!r} failed: {result.error}")
    return result.value
