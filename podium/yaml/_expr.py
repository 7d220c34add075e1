"""Expressions and templates in workflow files: Jinja2's immutable sandbox, cut down and bounded.

A workflow file is data, and may come from someone who must not run code on the engine's host. So
on top of Jinja2's ``ImmutableSandboxedEnvironment`` (no ``_``/internal attributes, no mutation):

* only ``{% if %}`` and ``{% for %}`` statements (no include/import/extends/macro/set/call blocks,
  so no file can be read and nothing defined), and no loader at all;
* the only variables are those the engine passes (``input``, ``steps``...) and one global, ``range``;
  no ``cycler``, ``joiner``, ``lipsum``, ``namespace``, ``dict``, ``config``, ``self`` or ``os``;
* a vetted list of filters, and calls only to ``range`` and to read-only methods of text, lists and
  mappings (``.split()``, ``.get()``...);
* bounded work: ``range`` and for-loops have an iteration budget, and ``*``, ``**``, ``+``, ``~``,
  ``%``, ``join``, ``replace`` and the output refuse results beyond :data:`MAX_SIZE`.

This module compiles templates and refuses, before anything runs, what the sandbox (``_sandbox``)
would refuse at run time: :class:`ExpressionError` says what and where. It also lists the variables
a template uses (:class:`Ref`), which is how steps' dependencies are found. Evaluation failures
raise :class:`EvaluationError`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateAssertionError, TemplateSyntaxError, UndefinedError, nodes
from jinja2.exceptions import SecurityError

from ._sandbox import MAX_SIZE, budget, check_defined, environment, filter_names, guard, new_budget

MAX_SOURCE = 100_000
"""Characters a single template may have."""

GLOBALS = frozenset({"range"})

_ALLOWED_NODES: frozenset[type[nodes.Node]] = frozenset(
    {
        nodes.Template, nodes.Output, nodes.TemplateData, nodes.If, nodes.For,
        nodes.Name, nodes.Const, nodes.List, nodes.Tuple, nodes.Dict, nodes.Pair, nodes.Keyword,
        nodes.CondExpr, nodes.Filter, nodes.Test, nodes.Call, nodes.Getitem, nodes.Getattr,
        nodes.Slice, nodes.Concat, nodes.Compare, nodes.Operand,
        nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod, nodes.Pow,
        nodes.And, nodes.Or, nodes.Not, nodes.Neg, nodes.Pos,
    }
)  # fmt: skip
_GUARD_FILTERS = frozenset({"default", "d"})
_GUARD_TESTS = frozenset({"defined", "undefined"})
_ATTR_FILTERS = frozenset(
    {"map", "sort", "groupby", "selectattr", "rejectattr", "sum", "unique", "min", "max"}
)


class ExpressionError(Exception):
    """A template or expression is not valid or uses something not allowed (found when compiling)."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "expression",
        hint: str | None = None,
        lineno: int = 1,
        near: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.hint = hint
        self.lineno = lineno
        self.near = near
        """Text of the source the problem is about, to point at it."""


class EvaluationError(Exception):
    """An expression failed or was refused while it was evaluated."""


@dataclass(frozen=True, slots=True)
class Ref:
    """A use of a variable: ``steps.classify.output.label`` is root ``steps``, path
    ``("classify", "output", "label")``."""

    root: str
    path: tuple[str | int, ...]
    guarded: bool
    """Inside ``| default(...)`` or an ``is defined`` test: the expression copes with it missing."""

    @property
    def text(self) -> str:
        out = self.root
        for p in self.path:
            out += f".{p}" if isinstance(p, str) and p.isidentifier() else f"[{p!r}]"
        return out


# -- compiling -----------------------------------------------------------------------------------


def has_template(text: str) -> bool:
    """Whether a string is a template (has ``{{``, ``{%`` or ``{#``) rather than plain text."""
    return "{{" in text or "{%" in text or "{#" in text


class Expr:
    """A compiled template string or expression.

    ``native`` templates are a single ``{{ expression }}``: they evaluate to the expression's value
    (a list stays a list). Others evaluate to text.
    """

    __slots__ = ("_template", "label", "native", "path", "refs", "result_types", "source", "where")

    def __init__(
        self,
        source: str,
        template: Any,
        native: bool,
        refs: tuple[Ref, ...],
        result_types: frozenset[str] | None,
        path: Ref | None = None,
    ):
        self.source = source
        self._template = template
        self.native = native
        self.refs = refs
        self.result_types = result_types
        """JSON types the result can have, when they can be known from the expression's form."""
        self.path = path
        """When the whole expression is one variable path (``{{ input.items }}``), that path."""
        self.label = ""
        """What it is in the file (``with.message``), for error messages."""
        self.where = ""
        """Where it is written (``flow.yaml:12:14``), for error messages."""

    def __repr__(self) -> str:
        return f"<Expr {self.source!r}>"

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        """The value (native) or text of this template. Raises :class:`EvaluationError`."""
        token = budget.set(new_budget())
        try:
            ctx = self._template.new_context(dict(variables))
            if self.native:
                for _ in self._template.root_render_func(ctx):
                    pass
                value = ctx.vars["result"]
                check_defined(value)
                guard(value, "the expression's value")  # before _plain copies it (a list held 1,000 times)
                return _plain(value)
            out, total = [], 0
            for chunk in self._template.root_render_func(ctx):
                total += len(chunk)
                if total > MAX_SIZE:
                    raise SecurityError(f"the template wrote more than {MAX_SIZE:,} characters")
                out.append(chunk)
            return "".join(out)
        except (UndefinedError, SecurityError) as exc:
            raise EvaluationError(self._context(str(exc))) from None
        except EvaluationError:
            raise
        except Exception as exc:
            raise EvaluationError(self._context(f"{type(exc).__name__}: {exc}")) from None
        finally:
            budget.reset(token)

    def _context(self, message: str) -> str:
        if self.label and self.where:
            return f"{self.label} ({self.where}): {message}"
        return f"{self.label or self.where}: {message}" if self.label or self.where else message


def _plain(value: Any) -> Any:
    """Jinja results as plain data: ranges, views and tuples become lists."""
    if isinstance(value, range | tuple) or type(value).__name__ in ("dict_keys", "dict_values", "dict_items"):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, str) and type(value) is not str:
        return str(value)  # Markup
    return value


def compile_template(source: str, names: Collection[str]) -> Expr:
    """Compile a string value of a workflow file. ``names`` are the variables it may use."""
    tree = _parse(source)
    body = tree.body
    if len(body) == 1 and isinstance(body[0], nodes.Output):
        parts = [n for n in body[0].nodes if not (isinstance(n, nodes.TemplateData) and not n.data.strip())]
        if len(parts) == 1 and not isinstance(parts[0], nodes.TemplateData):
            return _compile_expression(source, parts[0], names)
    refs = _check(tree, names)
    _transform(tree)
    return Expr(source, _build(tree, source), False, refs, frozenset({"string"}))


def compile_condition(source: str, names: Collection[str]) -> Expr:
    """Compile a condition (``if``, ``while``): a bare expression, or one ``{{ expression }}``."""
    text = source.strip()
    if has_template(text):
        tree = _parse(text)
        body = tree.body
        if len(body) == 1 and isinstance(body[0], nodes.Output):
            parts = [
                n for n in body[0].nodes if not (isinstance(n, nodes.TemplateData) and not n.data.strip())
            ]
            if len(parts) == 1 and not isinstance(parts[0], nodes.TemplateData):
                return _compile_expression(source, parts[0], names)
        raise ExpressionError(
            "a condition must be one expression",
            hint="write it bare (steps.check.output.ok and input.amount > 10) or as a single {{ ... }}",
        )
    if len(text) > MAX_SOURCE:
        raise ExpressionError(f"the expression is longer than {MAX_SOURCE:,} characters")
    from jinja2.parser import Parser

    try:
        parser = Parser(environment(), text, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            raise TemplateSyntaxError(f"unexpected {parser.stream.current.value!r} after the expression", 1)
    except TemplateSyntaxError as exc:
        raise ExpressionError(f"not a valid expression: {exc.message}", lineno=exc.lineno) from None
    except RecursionError:
        raise ExpressionError("the expression nests too deeply") from None
    return _compile_expression(source, expr, names)


def _compile_expression(source: str, expr: nodes.Expr, names: Collection[str]) -> Expr:
    refs = _check(expr, names)
    found = _chain(expr)
    path = next((r for r in refs if (r.root, r.path) == found), None) if found else None
    holder = nodes.Template([nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)], lineno=1)
    result_types = _infer(expr)
    _transform(holder)
    return Expr(source, _build(holder, source), True, refs, result_types, path)


def _parse(source: str) -> nodes.Template:
    if len(source) > MAX_SOURCE:
        raise ExpressionError(f"the template is longer than {MAX_SOURCE:,} characters")
    try:
        return environment().parse(source)
    except TemplateSyntaxError as exc:
        hint = None
        if "unknown tag" in (exc.message or "") or "Encountered unknown tag" in (exc.message or ""):
            hint = "only {% if %} and {% for %} statements are allowed in workflow templates"
        raise ExpressionError(f"not a valid template: {exc.message}", lineno=exc.lineno, hint=hint) from None
    except RecursionError:
        raise ExpressionError("the template nests too deeply") from None


def _build(tree: nodes.Template, source: str) -> Any:
    env = environment()
    tree.set_environment(env)
    try:
        return env.from_string(tree)
    except TemplateAssertionError as exc:
        msg = exc.message or str(exc)
        m = re.search(r"No (filter|test) named '([^']*)'", msg)
        if m:
            kind, name = m.groups()
            known = filter_names() if kind == "filter" else sorted(env.tests)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"{kind}s: {', '.join(known)}"
            raise ExpressionError(f"unknown {kind} {name!r}", hint=hint, near=name) from None
        raise ExpressionError(f"not a valid template: {msg}") from None
    except RecursionError:
        raise ExpressionError("the template nests too deeply") from None


def _chain(node: nodes.Node) -> tuple[str, tuple[str | int, ...]] | None:
    """``a.b['c'][0]`` as (``a``, (``b``, ``c``, 0)); None if not such a path."""
    path: list[str | int] = []
    while True:
        if isinstance(node, nodes.Name):
            return (node.name, tuple(reversed(path))) if node.ctx == "load" else None
        if isinstance(node, nodes.Getattr):
            path.append(node.attr)
            node = node.node
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str | int)
        ):
            path.append(node.arg.value)
            node = node.node
        else:
            return None


def _check(tree: nodes.Node, names: Collection[str]) -> tuple[Ref, ...]:
    """Refuse what the sandbox does not allow, and list the variables the template uses."""
    local = {"loop"}
    for loop in tree.find_all(nodes.For):
        targets = [loop.target, *loop.target.find_all(nodes.Name)]
        local.update(n.name for n in targets if isinstance(n, nodes.Name))
    refs: list[Ref] = []
    allowed = set(names) | GLOBALS | local

    def visit(node: nodes.Node, guarded: bool) -> None:
        kind = type(node)
        if kind not in _ALLOWED_NODES:
            what = kind.__name__.lower()
            raise ExpressionError(
                f"'{what}' is not allowed in workflow templates",
                hint="only {% if %} and {% for %} statements and expressions are allowed",
            )
        if isinstance(node, nodes.For) and node.recursive:
            raise ExpressionError("recursive loops are not allowed in workflow templates")
        if isinstance(node, nodes.Getattr) and node.attr in ("format", "format_map", "mro"):
            raise ExpressionError(
                f"{node.attr!r} is not allowed in workflow expressions",
                hint="join text with ~ instead",
                near=node.attr,
            )
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            raise ExpressionError(
                f"access to {node.attr!r} is not allowed: names starting with '_' are private", near=node.attr
            )
        key = (
            node.arg.value if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) else None
        )
        if isinstance(key, str) and key.startswith("_"):
            raise ExpressionError(
                f"access to {key!r} is not allowed: names starting with '_' are private", near=key
            )
        if isinstance(node, nodes.Filter | nodes.Test):
            if isinstance(node, nodes.Filter) and node.name.startswith("_"):
                raise ExpressionError(f"unknown filter {node.name!r}", near=node.name)
            private = [
                a.value
                for a in [*node.args, *(k.value for k in node.kwargs)]
                if isinstance(a, nodes.Const) and isinstance(a.value, str) and a.value.startswith("_")
            ]
            if private and node.name in _ATTR_FILTERS:
                raise ExpressionError(
                    f"attribute {private[0]!r} is not allowed: names starting with '_' are private"
                )
        found = _chain(node)
        if found is not None:
            root, path = found
            if root not in allowed:
                close = difflib.get_close_matches(root, sorted(set(names) | GLOBALS), n=1)
                hint = (
                    f"did you mean {close[0]!r}?"
                    if close
                    else f"the names you can use here: {', '.join(sorted(names))}"
                )
                raise ExpressionError(
                    f"unknown name {root!r}", code="unknown-reference", hint=hint, near=root
                )
            if root in names:
                refs.append(Ref(root, path, guarded))
            return
        for field in node.fields:
            child = getattr(node, field, None)
            inner = guarded
            if field == "node" and (
                (isinstance(node, nodes.Filter) and node.name in _GUARD_FILTERS)
                or (isinstance(node, nodes.Test) and node.name in _GUARD_TESTS)
            ):
                inner = True
            if isinstance(child, nodes.Node):
                visit(child, inner)
            elif isinstance(child, list):
                for c in child:
                    if isinstance(c, nodes.Node):
                        visit(c, inner)

    try:
        visit(tree, False)
    except RecursionError:
        raise ExpressionError("the template nests too deeply") from None
    return tuple(refs)


def _transform(node: nodes.Node) -> nodes.Node:
    """Bound the work: loops draw from an iteration budget, '~' checks the size it makes; an ordering
    (``<``, ``>``...) refuses NaN."""
    for field in node.fields:
        child = getattr(node, field, None)
        if isinstance(child, nodes.Node):
            setattr(node, field, _transform(child))
        elif isinstance(child, list):
            setattr(node, field, [_transform(c) if isinstance(c, nodes.Node) else c for c in child])
    if isinstance(node, nodes.For):
        node.iter = nodes.Filter(node.iter, "_podium_iter", [], [], None, None, lineno=node.lineno)
    if isinstance(node, nodes.Compare) and any(op.op in _ORDERINGS for op in node.ops):
        # NaN in an ordering is refused (_sandbox.ordered): each side is checked as it is compared
        node.expr = _ordered(node.expr)
        for op in node.ops:
            op.expr = _ordered(op.expr)
    if isinstance(node, nodes.Concat):
        return nodes.Filter(
            nodes.List(node.nodes, lineno=node.lineno),
            "_podium_concat",
            [],
            [],
            None,
            None,
            lineno=node.lineno,
        )
    return node


_ORDERINGS = frozenset({"lt", "lteq", "gt", "gteq"})


def _ordered(node: nodes.Expr) -> nodes.Expr:
    return nodes.Filter(node, "_podium_ordered", [], [], None, None, lineno=node.lineno)


_FILTER_TYPES = {
    "int": "integer", "float": "number", "round": "number", "abs": "number",
    "length": "integer", "count": "integer", "wordcount": "integer",
    "string": "string", "lower": "string", "upper": "string", "trim": "string", "title": "string",
    "capitalize": "string", "join": "string", "replace": "string", "tojson": "string", "truncate": "string",
    "urlencode": "string", "list": "array", "sort": "array", "unique": "array", "items": "array",
    "dictsort": "array", "map": "array", "select": "array", "reject": "array", "selectattr": "array",
    "rejectattr": "array", "groupby": "array",
}  # fmt: skip


def json_type(value: Any) -> str | None:
    """The JSON type name of a Python value, or None for other objects."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return None


def _infer(node: nodes.Node) -> frozenset[str] | None:
    """JSON types an expression can produce, when its form tells (None when it does not)."""
    if isinstance(node, nodes.Const):
        t = json_type(node.value)
        return frozenset({t}) if t else None
    if isinstance(node, nodes.List | nodes.Tuple):
        return frozenset({"array"})
    if isinstance(node, nodes.Dict):
        return frozenset({"object"})
    if isinstance(node, nodes.Compare | nodes.Not | nodes.Test):
        return frozenset({"boolean"})
    if isinstance(node, nodes.Concat):
        return frozenset({"string"})
    if isinstance(node, nodes.Div):
        return frozenset({"number"})
    if isinstance(node, nodes.Filter) and node.name in _FILTER_TYPES:
        return frozenset({_FILTER_TYPES[node.name]})
    if isinstance(node, nodes.CondExpr) and node.expr2 is not None:
        a, b = _infer(node.expr1), _infer(node.expr2)
        return a | b if a is not None and b is not None else None
    return None


# -- values that hold templates ------------------------------------------------------------------


def compile_tree(
    value: Any, compile_one: Callable[[str, tuple[Any, ...]], Any], path: tuple[Any, ...] = ()
) -> Any:
    """``value`` with every template string replaced by ``compile_one(text, path)``."""
    if isinstance(value, str):
        return compile_one(value, path) if has_template(value) else value
    if isinstance(value, list):
        return [compile_tree(v, compile_one, (*path, i)) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: compile_tree(v, compile_one, (*path, k)) for k, v in value.items()}
    return value


def evaluate_tree(tree: Any, variables: Mapping[str, Any]) -> Any:
    """A compiled tree's value: each :class:`Expr` evaluated."""
    if isinstance(tree, Expr):
        return tree.evaluate(variables)
    if isinstance(tree, list):
        return [evaluate_tree(v, variables) for v in tree]
    if isinstance(tree, dict):
        return {k: evaluate_tree(v, variables) for k, v in tree.items()}
    return tree


def tree_exprs(tree: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Expr]]:
    """Every :class:`Expr` in a compiled tree, with its path."""
    if isinstance(tree, Expr):
        yield path, tree
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from tree_exprs(v, (*path, i))
    elif isinstance(tree, dict):
        for k, v in tree.items():
            yield from tree_exprs(v, (*path, k))


def step_refs(expr: Any) -> list[str]:
    """The steps an expression reads (``steps.NAME...``)."""
    if not isinstance(expr, Expr):
        return []
    return [str(r.path[0]) for r in expr.refs if r.root == "steps" and r.path]
