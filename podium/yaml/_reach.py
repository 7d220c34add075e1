"""What a step reaches (tools, MCP servers, hosts, folders), checked while a file is planned: it
must be written in the file, not computed, and registered (see :mod:`podium.governance.capabilities`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._python import Refused, resolve_function
from ._source import Span, YMap, value_span

if TYPE_CHECKING:
    from ._registry import StepType
    from ._spec import Loader, StepSpec


def capability_problems(
    s: StepSpec, kind: StepType, loader: Loader, base_dir: str
) -> list[tuple[Span, str, str | None]]:
    """(where, what is wrong, how to fix it) for each reach of step ``s`` that is not allowed."""
    hook = kind.capabilities
    if hook is None:
        return []
    from ..governance.capabilities import check_use

    w = s.with_ if s.with_ is not None else YMap(s.node.span)
    caps = loader.capabilities
    out: list[tuple[Span, str, str | None]] = []
    for use in hook(w):
        span = _span_at(w, use.at)
        if use.problem is not None:
            out.append((span, use.problem, use.hint))
        elif use.python is not None:
            # Project functions only (the uses: rule); a registered function is named: {name: NAME}.
            loader.resolved += 1
            try:
                resolve_function(use.python, base_dir=base_dir, modules=loader.modules)
            except Refused as exc:
                out.append(
                    (
                        span,
                        f"the tool {use.python!r} is not allowed: {exc.message}",
                        f"{exc.hint + '; or ' if exc.hint else ''}an admin registers it with podium tools add "
                        f"NAME --python {use.python}, and the step names it: {{name: NAME}}",
                    )
                )
        elif caps is not None:
            why = check_use(use, caps)
            if why is not None:
                out.append((span, why[0], why[1] or None))
    return out


def _span_at(node: Any, at: tuple[Any, ...]) -> Span:
    """Where the value at path ``at`` (keys and indexes) inside ``node`` is written."""
    span = getattr(node, "span", Span(1, 1))
    for key in at:
        found = isinstance(node, YMap) and key in node
        if found or (isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)):
            span, node = value_span(node, key), node[key]
        else:
            break
    return span
