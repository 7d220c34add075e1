"""Prediction to action: a coordinated response across systems, one action after another, with a
person's approval before high-impact ones and compensation (the done actions undone, newest first)
when a later one fails."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import DefinitionError, NonRetryableError

Args = Mapping[str, Any] | Callable[[Any], Mapping[str, Any]]
Connect = Callable[[str], Any]


@dataclass(frozen=True, kw_only=True)
class Action:
    """One action of a response. ``do`` is either ``(connector, operation, arguments)``, done through
    ``ctx.connector(...)`` (durable, audited, retried), or a function ``fn(ctx)`` run as a durable call.
    ``undo`` is the same with arguments computed from ``do``'s result (``lambda result: {...}``) or a
    function ``fn(ctx, result)``."""

    name: str
    do: tuple[str, str, Args] | Callable[..., Any]
    undo: tuple[str, str, Args] | Callable[..., Any] | None = None
    approve: bool = False
    """High impact: a person approves first; a declined action is skipped, not failed."""
    role: str | None = None
    """Who may approve it."""

    def __post_init__(self) -> None:
        for what, spec in (("do", self.do), ("undo", self.undo)):
            if spec is None or callable(spec):
                continue
            if not (isinstance(spec, tuple) and len(spec) == 3 and all(isinstance(x, str) for x in spec[:2])):
                raise DefinitionError(
                    f"action {self.name!r}: {what} must be a function or (connector, operation, arguments)"
                )


async def _run(ctx: Any, spec: Any, label: str, result: Any, undo: bool, connect: Connect | None) -> Any:
    if callable(spec):
        args = (ctx, result) if undo else (ctx,)
        return await ctx.call(spec, *args, name=label)
    connector, operation, arguments = spec
    args = arguments(result) if callable(arguments) else arguments
    bound = connect(connector) if connect is not None else ctx.connector(connector)
    return await bound.call(operation, dict(args))


def _call_of(spec: Any) -> Any:
    """What an action's ``do`` calls, for the digest its approval is named with: the connector
    operation and its arguments (computed ones as they are now), or the function's name."""
    if callable(spec):
        return f"{getattr(spec, '__module__', '')}:{getattr(spec, '__qualname__', type(spec).__name__)}"
    connector, operation, arguments = spec
    return [connector, operation, arguments(None) if callable(arguments) else arguments]


async def act(
    ctx: Any, actions: Sequence[Action], *, context: Any = None, connect: Connect | None = None
) -> dict[str, Any]:
    """Do ``actions`` in order inside the step in ``ctx``. Returns ``{done: {name: result}, declined:
    [names]}``. If one fails, the done ones are undone (newest first) and the step fails with what
    failed and what was undone. ``context`` (the score, the customer) is shown to approvers.
    ``connect(name)`` gives the step's connector for an action's connector name (default
    ``ctx.connector(name)``; e.g. ``lambda n: ctx.connector(n, fallback=...)``)."""
    done: list[tuple[Action, Any]] = []
    declined: list[str] = []
    from ..governance.enforcement import asked_about

    for a in actions:
        if a.approve:
            shown = {"action": a.name, "context": context}
            # Named after what is asked (what is shown, and the call it approves): a step that runs
            # again with another context or call is asked again; the same one is not.
            digest = asked_about(a.name, [shown, _call_of(a.do)])
            decision = await ctx.approval(
                shown,
                title=f"approve {a.name!r} (step {ctx.step_id!r})",
                role=a.role,
                name=f"approval:act:{ctx.step_id}:{a.name}:{ctx.iteration}:{ctx.index}:{digest}",
            )
            if not decision.get("approved"):
                declined.append(a.name)
                await ctx.governance.audit("action.declined", step=ctx.step_id, action=a.name)
                continue
        try:
            result = await _run(ctx, a.do, f"act:{a.name}", None, undo=False, connect=connect)
        except Exception as exc:
            undone = []
            for prev, res in reversed(done):
                if prev.undo is None:
                    continue
                await _run(ctx, prev.undo, f"undo:{prev.name}", res, undo=True, connect=connect)
                undone.append(prev.name)
            await ctx.governance.audit("action.compensated", step=ctx.step_id, failed=a.name, undone=undone)
            raise NonRetryableError(
                f"step {ctx.step_id!r}: action {a.name!r} failed ({type(exc).__name__}: {exc}); "
                f"undone: {', '.join(undone) or 'nothing'}"
            ) from None
        done.append((a, result))
    return {"done": {a.name: r for a, r in done}, "declined": declined}
