"""Limits on what a caller may hand to the engine, shared by every surface (CLI, HTTP API, MCP).

JSON from outside is checked before it reaches the engine: how deep it nests (deep nesting exhausts
the recursion of the serializers and validators: a crash, not an error), numbers JSON has no place for
(``NaN``, ``Infinity``: Python's parser accepts them, and they would be stored as ``null``), and text
that cannot be stored (a lone UTF-16 surrogate such as ``\\ud800``). Each problem is reported with the
path of the field, so the message says where it is and what to send instead.
"""

from __future__ import annotations

import json
import math
from typing import Any

#: How deep JSON from a caller may nest (objects and arrays); 64 is far beyond any real payload.
MAX_JSON_DEPTH = 64
#: The largest request body the HTTP API accepts by default (``podium serve --max-request-size``).
MAX_REQUEST_BYTES = 10 * 1024 * 1024


class JsonProblem(ValueError):
    """JSON that the engine cannot take: the message names the field and the fix."""


def text_depth(text: str | bytes) -> int:
    """How deep the JSON text nests, counted without parsing it (so that a hostile document cannot
    exhaust the parser's recursion first). Brackets inside strings are not counted."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _where(path: list[str | int], root: str) -> str:
    out = root
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "the value"


def value_problem(
    value: Any, *, where: str = "", max_depth: int = MAX_JSON_DEPTH, surrogates: bool = True
) -> str | None:
    """Why a decoded JSON value cannot be taken (None if it can): nesting, NaN/Infinity, lone
    surrogates (unless ``surrogates`` is false: the store's serializer refuses those itself)."""
    stack: list[tuple[Any, list[str | int], int]] = [(value, [], 0)]
    while stack:
        v, path, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth >= max_depth:
                return (
                    f"{_where(path, where)} is nested deeper than {max_depth} levels; "
                    "send a flatter document (nest objects and arrays at most "
                    f"{max_depth} levels deep)"
                )
            items = v.items() if isinstance(v, dict) else enumerate(v)
            for k, item in items:
                if surrogates and isinstance(k, str) and _bad_text(k):
                    return f"a key in {_where(path, where)} {_SURROGATE}"
                stack.append((item, [*path, k], depth + 1))
        elif isinstance(v, float) and not math.isfinite(v):
            spelled = "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
            return (
                f"{_where(path, where)} is {spelled}, which JSON has no place for; send a finite "
                "number or null"
            )
        elif surrogates and isinstance(v, str) and _bad_text(v):
            return f"{_where(path, where)} {_SURROGATE}"
    return None


_SURROGATE = (
    "holds an unpaired UTF-16 surrogate (such as \\ud800), which is not text; send valid "
    "Unicode (a surrogate pair, or the character itself)"
)


def _bad_text(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def text_problem(s: str, *, where: str) -> str | None:
    """Why a name or other text from a caller cannot be taken (a lone surrogate), or None."""
    return f"{where} {_SURROGATE}" if _bad_text(s) else None


def refuse_outside(value: Any, *, where: str, what: str) -> None:
    """Raise :class:`~podium.InputValidationError` for a value a run is sent from outside (a signal's
    payload, an approver's edited payload) that a run's input would be refused for: NaN, Infinity,
    deep nesting. ``where`` names the value in the message, ``what`` says how to send it again."""
    from ..errors import InputValidationError

    problem = value_problem(value, where=where, surrogates=False)
    if problem:
        raise InputValidationError(f"{problem} ({what})")


def loads(text: str | bytes, *, where: str = "", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` for text from a caller: raises :class:`JsonProblem` naming the problem and
    the field, for deep nesting, ``NaN``/``Infinity`` and lone surrogates (and ``ValueError`` from
    ``json`` for text that is not JSON)."""
    if text_depth(text) > max_depth:
        raise JsonProblem(
            f"{where or 'the JSON'} is nested deeper than {max_depth} levels; send a flatter document"
        )
    value = json.loads(text)
    problem = value_problem(value, where=where, max_depth=max_depth)
    if problem:
        raise JsonProblem(problem)
    return value
