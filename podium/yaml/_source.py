"""Reading a workflow file into plain values that remember where each one was written.

The reader is PyYAML's scanner, parser and composer with YAML 1.2 core-schema scalars (only
``true``/``false`` are booleans, ``on``/``no`` and ``1:30`` stay text, dates stay text) and no tags
beyond those: nothing in a file can construct a Python object. Mappings and lists come back as
:class:`YMap` and :class:`YSeq`, which carry a :class:`Span` for every key and value.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from ._problems import Problem

MAX_NODES = 200_000
"""Values a file may expand to (aliases included): a guard against alias bombs."""
MAX_DEPTH = 64
"""How deeply values may nest."""

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"


@dataclass(frozen=True, slots=True)
class Span:
    """Where a value was written: 1-based line and column, and its character range in the text."""

    line: int
    column: int
    start: int = 0
    end: int = 0
    style: str = ""
    """Scalar style: ``""`` plain, ``'`` or ``"`` quoted, ``|`` or ``>`` block; ``""`` for collections."""


NOWHERE = Span(1, 1)


class YMap(dict[Any, Any]):
    """A mapping from a file; ``key_spans``/``value_spans`` say where each key and value is."""

    __slots__ = ("key_spans", "span", "value_spans")

    def __init__(self, span: Span = NOWHERE) -> None:
        super().__init__()
        self.span = span
        self.key_spans: dict[Any, Span] = {}
        self.value_spans: dict[Any, Span] = {}


class YSeq(list[Any]):
    """A list from a file; ``spans[i]`` says where item ``i`` is."""

    __slots__ = ("span", "spans")

    def __init__(self, span: Span = NOWHERE) -> None:
        super().__init__()
        self.span = span
        self.spans: list[Span] = []


def key_span(container: Any, key: Any) -> Span:
    """Where ``key`` of a mapping is written (the mapping's own span if unknown)."""
    if isinstance(container, YMap):
        return container.key_spans.get(key, container.span)
    return getattr(container, "span", NOWHERE)


def value_span(container: Any, key: Any) -> Span:
    """Where the value at ``key`` (a mapping key or a list index) is written."""
    if isinstance(container, YMap):
        return container.value_spans.get(key, container.span)
    if isinstance(container, YSeq) and isinstance(key, int) and 0 <= key < len(container.spans):
        return container.spans[key]
    return getattr(container, "span", NOWHERE)


class _Resolver(BaseResolver):
    """YAML 1.2 core schema scalars."""


for _tag, _pattern, _first in (
    (_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (_NULL, r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    (_INT, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        _FLOAT,
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+.0123456789",
    ),
    (_MERGE, r"^(?:<<)$", ["<"]),
):
    _Resolver.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


class _Loader(Reader, Scanner, Parser, Composer, _Resolver):
    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _Resolver.__init__(self)


class _TooBig(Exception):
    pass


def _span(node: Node) -> Span:
    m, e = node.start_mark, node.end_mark
    style = (getattr(node, "style", None) or "") if isinstance(node, ScalarNode) else ""
    return Span(m.line + 1, m.column + 1, m.index, e.index if e is not None else m.index, style)


def _line_col(text: str, index: int) -> tuple[int, int]:
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.count = 0
        self.built: dict[int, Any] = {}
        self.active: set[int] = set()

    def problem(self, span: Span, message: str, hint: str | None = None) -> None:
        self.problems.append(
            Problem(
                file=self.file, line=span.line, column=span.column, message=message, code="yaml", hint=hint
            )
        )

    def build(self, node: Node, depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooBig
        key = id(node)
        if key in self.built:
            done = self.built[key]
            self.count += _size(done)
            if self.count > MAX_NODES:
                raise _TooBig
            return done
        if key in self.active:
            self.problem(_span(node), "an alias refers to the value that contains it (a recursive structure)")
            return None
        if depth > MAX_DEPTH:
            self.problem(_span(node), f"values nest more than {MAX_DEPTH} levels deep")
            return None
        self.active.add(key)
        try:
            if isinstance(node, ScalarNode):
                value = self.scalar(node)
            elif isinstance(node, SequenceNode):
                value = self.sequence(node, depth)
            elif isinstance(node, MappingNode):
                value = self.mapping(node, depth)
            else:  # pragma: no cover - the composer makes only these three
                value = None
        finally:
            self.active.discard(key)
        self.built[key] = value
        return value

    def scalar(self, node: ScalarNode) -> Any:
        tag, text = node.tag, node.value
        if tag == _STR:
            return text
        try:
            if tag == _NULL:
                return None
            if tag == _BOOL:
                return text.lower() == "true"
            if tag == _INT:
                if text[:2] in ("0x", "0o"):
                    return int(text[2:], 16 if text[1] == "x" else 8)
                return int(text)
            if tag == _FLOAT:
                low = text.lower()
                if low.endswith("inf"):
                    return -math.inf if low.startswith("-") else math.inf
                if low.endswith("nan"):
                    return math.nan
                return float(text)
        except ValueError as exc:
            self.problem(
                _span(node), f"cannot read {text[:40]!r} as a number: {exc}", "quote it to make it text"
            )
            return None
        self.problem(
            _span(node),
            f"the tag {tag!r} is not allowed in a workflow file",
            "workflow files hold plain text, numbers, true/false, null, lists and mappings",
        )
        return None

    def sequence(self, node: SequenceNode, depth: int) -> YSeq:
        if node.tag != _SEQ:
            self.problem(_span(node), f"the tag {node.tag!r} is not allowed in a workflow file")
        out = YSeq(_span(node))
        for item in node.value:
            out.append(self.build(item, depth + 1))
            out.spans.append(_span(item))
        return out

    def mapping(self, node: MappingNode, depth: int) -> YMap:
        if node.tag != _MAP:
            self.problem(_span(node), f"the tag {node.tag!r} is not allowed in a workflow file")
        out = YMap(_span(node))
        merged: list[YMap] = []
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == _MERGE:
                value = self.build(value_node, depth + 1)
                sources = value if isinstance(value, list) else [value]
                for src in sources:
                    if isinstance(src, YMap):
                        merged.append(src)
                    else:
                        self.problem(_span(value_node), "'<<' merges only mappings (or a list of mappings)")
                continue
            key = self.build(key_node, depth + 1)
            try:
                hash(key)
            except TypeError:
                self.problem(_span(key_node), "a mapping key must be text, not a list or a mapping")
                continue
            if key in out:
                first = out.key_spans[key]
                self.problem(
                    _span(key_node),
                    f"duplicate key {key!r} (first written at line {first.line})",
                    "remove one of them",
                )
                continue
            out[key] = self.build(value_node, depth + 1)
            out.key_spans[key] = _span(key_node)
            out.value_spans[key] = _span(value_node)
        for src in merged:
            for k, v in src.items():
                if k not in out:
                    out[k] = v
                    out.key_spans[k] = src.key_spans.get(k, src.span)
                    out.value_spans[k] = src.value_spans.get(k, src.span)
        return out


def _size(value: Any) -> int:
    """Values inside ``value`` (for counting alias expansions), stopping early past the limit."""
    n, stack = 0, [value]
    while stack and n <= MAX_NODES:
        v = stack.pop()
        n += 1
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return n


def read_yaml(text: str, file: str) -> tuple[Any, list[Problem]]:
    """The single document in ``text`` as plain values, and what is wrong with it as YAML."""
    problems: list[Problem] = []

    def at(line: int, column: int, message: str, hint: str | None = None) -> None:
        problems.append(Problem(file=file, line=line, column=column, message=message, code="yaml", hint=hint))

    if not isinstance(text, str):
        at(1, 1, "the file is not text")
        return None, problems
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        what = exc.problem or "not valid YAML"
        if exc.context:
            what = f"{what} ({exc.context})"
        hint = None
        if "expected a single document" in what:
            hint = "a workflow file holds one document; remove the extra '---' or split the file"
        elif "'\\t'" in what:
            hint = "indent with spaces, not tabs"
        at(line, col, f"not valid YAML: {what}", hint)
        return None, problems
    except yaml.YAMLError as exc:  # reader errors: unprintable characters, bad encoding
        position = getattr(exc, "position", None)
        line, col = _line_col(text, position) if isinstance(position, int) else (1, 1)
        char = getattr(exc, "character", None)
        what = (
            f"the character {chr(char)!r} is not allowed"
            if isinstance(char, int)
            else str(exc).split("\n")[0]
        )
        at(line, col, f"not valid YAML: {what}", "remove control characters; save the file as UTF-8")
        return None, problems
    except RecursionError:
        at(1, 1, "not valid YAML: values nest too deeply")
        return None, problems
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        at(1, 1, "the file is empty", "start with 'name:' and 'steps:' (see 'podium init' for an example)")
        return None, problems
    builder = _Builder(file)
    try:
        value = builder.build(node)
    except _TooBig:
        at(1, 1, f"the file expands to more than {MAX_NODES} values (aliases included); it is too large")
        return None, problems
    except RecursionError:
        at(1, 1, "not valid YAML: values nest too deeply")
        return None, problems
    return value, builder.problems


def offset_span(span: Span, text: str, value: str, offset: int) -> Span:
    """The span of character ``offset`` of the string ``value`` written at ``span`` of ``text``, when
    the mapping is exact (a one-line plain or quoted scalar without escapes); else ``span``."""
    raw = text[span.start : span.end] if span.end > span.start else ""
    if "\n" in raw or not 0 <= offset <= len(value):
        return span
    if span.style == "" and raw == value:
        shift = offset
    elif span.style in ("'", '"') and raw[1:-1] == value:
        shift = offset + 1
    else:
        return span
    return Span(span.line, span.column + shift, span.start + shift, span.start + shift, span.style)
