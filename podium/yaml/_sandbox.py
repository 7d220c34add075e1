"""The sandbox that workflow expressions run in: Jinja2's ``ImmutableSandboxedEnvironment``, cut down
(a vetted set of filters, one global, read-only method calls) and bounded (sizes, iterations).

What compiling refuses is in ``_expr``; this module is the second layer, which holds even if a
template reached it unchecked, and the only place that enforces the limits at run time.
"""

from __future__ import annotations

import contextvars
import json
import math
import re
import time
import types
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from jinja2 import StrictUndefined, Undefined
from jinja2.exceptions import SecurityError
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_SIZE = 10_000_000
"""Characters (or list items) one value made by an expression may hold, and the most a template may
write."""
MAX_ITERATIONS = 100_000
"""For-loop iterations one evaluation may run, all loops together."""
MAX_SECONDS = 2.0
"""Seconds of CPU one evaluation may use (its thread's CPU time, so other processes and threads do
not count; checked at each loop iteration, operator, call and filter): the engine's event loop,
and every run of the process, waits while an expression runs."""
MAX_RANGE = 100_000
"""Items ``range()`` may produce."""
MAX_INT_BITS = 4096
"""Size of integers that ``*`` and ``**`` may produce."""
_STR_METHODS = frozenset({
    "capitalize", "casefold", "count", "endswith", "find", "isalnum", "isalpha", "isdecimal", "isdigit",
    "islower", "isnumeric", "isspace", "istitle", "isupper", "lower", "lstrip", "partition", "removeprefix",
    "removesuffix", "replace", "rfind", "rpartition", "rsplit", "rstrip", "split", "splitlines",
    "startswith", "strip", "swapcase", "title", "upper",
})  # fmt: skip
_METHODS: dict[type, frozenset[str]] = {
    str: _STR_METHODS,
    dict: frozenset({"get", "keys", "values", "items"}),
    list: frozenset({"count", "index"}),
    tuple: frozenset({"count", "index"}),
}
_FORMAT_WIDTH = re.compile(r"%[-+ #0]*(\*|\d{4,})|%[-+ #0]*\d*\.(\*|\d{4,})")


class _Undefined(StrictUndefined):
    """Fails when used (printed, compared, iterated...), but chains: ``a.b.c`` of a missing ``a`` is
    still undefined, so that ``| default(...)`` and ``is defined`` work on whole paths."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        return self

    def __getitem__(self, key: Any) -> Any:
        return self


def missing(hint: str) -> Any:
    """An undefined value that explains itself when used."""
    return _Undefined(hint=hint)


budget: contextvars.ContextVar[list[float]] = contextvars.ContextVar("podium_expr_budget")
"""The evaluation's budget: [for-loop iterations left, deadline (``time.thread_time()``)]."""


def new_budget() -> list[float]:
    return [MAX_ITERATIONS, time.thread_time() + MAX_SECONDS]


def in_time() -> None:
    """Raise if the evaluation under way has run longer than :data:`MAX_SECONDS`."""
    left = budget.get(None)
    if left is not None and time.thread_time() > left[1]:
        raise SecurityError(
            f"the expression ran longer than {MAX_SECONDS:g} s; workflow expressions are bounded (the engine "
            "waits while one runs): do heavy work in a Python step (uses: module:function) instead"
        )


def _size(value: Any, limit: int = MAX_SIZE) -> int:
    """Characters and items in ``value``, counted until ``limit`` is passed."""
    n, stack = 0, [value]
    while stack and n <= limit:
        v = stack.pop()
        if isinstance(v, str):
            n += len(v)
        elif isinstance(v, dict):
            n += len(v) + 1
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list | tuple | set | frozenset):
            n += len(v) + 1
            stack.extend(v)
        elif isinstance(v, int):  # as long as its digits when it is made text (10 ** 1000: 1,001)
            n += v.bit_length() // 3 + 1
        elif isinstance(v, float):
            n += 24
        else:
            n += 1
    return n


def guard(value: Any, what: str = "a value") -> Any:
    in_time()
    if _size(value) > MAX_SIZE:
        raise SecurityError(
            f"{what} would exceed {MAX_SIZE:,} characters or items; workflow expressions are bounded"
        )
    return value


def _guarded(fn: Any, name: str) -> Any:
    """A stock filter that makes text of its input (``upper``, ``trim``...), checking the input's size
    first: a value held many times (``[x, x]``) is small in memory but not as text."""
    what = f"the input of '{name}'"
    pass_arg = getattr(fn, "jinja_pass_arg", None)
    if pass_arg is None:

        def plain(value: Any, *args: Any, **kwargs: Any) -> Any:
            return fn(guard(value, what), *args, **kwargs)

        return plain

    def passing(first: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(first, guard(value, what), *args, **kwargs)

    passing.jinja_pass_arg = pass_arg  # type: ignore[attr-defined]
    return passing


#: Stock filters that make text of their input.
_TEXT_FILTERS = ("capitalize", "lower", "title", "trim", "truncate", "upper", "urlencode", "wordcount")


def _format_size(left: str, right: Any) -> int:
    """The most characters ``left % right`` can make: each conversion may write all of ``right``
    (a mapping key can be used any number of times), padded to a width below 1,000. Every '%' is
    counted as a conversion: a pattern of them misses some (a key may nest parentheses, '%((a))s'
    uses the key '(a)'), and counting a literal '%%' twice only overestimates."""
    return len(left) + left.count("%") * (_size(right, MAX_SIZE) + 1000)


def _range(*args: int) -> list[int]:
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise SecurityError(f"range() of {len(rng):,} items exceeds the limit of {MAX_RANGE:,}")
    return list(rng)


def _iterate(value: Any) -> Iterator[Any]:
    left = budget.get(None)
    if left is None:
        left = new_budget()
    for item in value:
        left[0] -= 1
        if left[0] < 0:
            raise SecurityError(f"for-loops ran more than {MAX_ITERATIONS:,} iterations in one expression")
        if time.thread_time() > left[1]:
            in_time()
        yield item


def _concat(parts: list[Any]) -> str:
    total = 0
    out = []
    for p in parts:
        s = p if isinstance(p, str) else str(guard(p))
        total += len(s)
        if total > MAX_SIZE:
            raise SecurityError(f"joining text with '~' would exceed {MAX_SIZE:,} characters")
        out.append(s)
    return "".join(out)


def _join(value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    if attribute is not None:
        raise SecurityError("join(attribute=...) is not supported; use map(attribute=...) | join")
    items = list(value)
    guard(items, "join's input")
    total = sum(len(x) if isinstance(x, str) else 32 for x in items) + len(str(d)) * max(0, len(items) - 1)
    if total > MAX_SIZE:
        raise SecurityError(f"join would exceed {MAX_SIZE:,} characters")
    return guard(str(d).join(x if isinstance(x, str) else str(x) for x in items), "join's result")


def _replace_size(s: str, old: str, new: str, count: int | None = None) -> None:
    n = s.count(old) if old else len(s) + 1
    if count is not None and count >= 0:
        n = min(n, count)
    if len(s) + n * max(0, len(new) - len(old)) > MAX_SIZE:
        raise SecurityError(f"replace would exceed {MAX_SIZE:,} characters")


def _replace(s: Any, old: str, new: str, count: int | None = None) -> str:
    s, old, new = str(guard(s, "the input of 'replace'")), str(old), str(new)
    _replace_size(s, old, new, count)
    return s.replace(old, new) if count is None else s.replace(old, new, count)


def _tojson(value: Any, indent: int | None = None) -> str:
    guard(value, "tojson's input")
    if indent is not None and not 0 <= int(indent) <= 8:
        raise SecurityError("tojson indent must be between 0 and 8")
    return json.dumps(value, ensure_ascii=False, default=str, indent=indent)


def _fromjson(value: Any) -> Any:
    return json.loads(str(value))


def _string(value: Any) -> str:
    return str(guard(value))


def _sum(iterable: Iterable[Any], attribute: Any = None, start: Any = 0) -> Any:
    if not isinstance(start, int | float) or isinstance(start, bool):
        raise SecurityError("sum() adds numbers only")
    from jinja2.filters import make_attrgetter

    items = list(iterable)
    if attribute is not None:
        getter = make_attrgetter(environment(), attribute)
        items = [getter(x) for x in items]
    total = start
    for x in items:
        if not isinstance(x, int | float) or isinstance(x, bool):
            raise TypeError(f"sum() adds numbers only, got {type(x).__name__}")
        total += x
    return total


def ordered(value: Any) -> Any:
    """``value``, unless it is NaN: an expression that puts a limit on a value (``risk > 0.8``) must
    not let NaN through, and NaN is neither above nor below anything (``risk > 0.8`` and
    ``risk <= 0.8`` are both false), so a check written either way would pass it. A model's or an
    API's answer, a database row or a step's output may hold one; an ordering refuses it."""
    if isinstance(value, float) and math.isnan(value):
        raise SecurityError(
            "a value compared with <, <=, > or >= is NaN (not a number), which is neither above nor below any "
            "limit, so the comparison would let it through whichever way it is written; check for it first "
            "(steps.x.output.v is number and steps.x.output.v == steps.x.output.v), or replace it in the step "
            "that reads it"
        )
    return value


_UNSET: Any = object()


def _not_a_number(value: Any, name: str) -> SecurityError:
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
    return SecurityError(
        f"'{name}' of {shown}: not a number, so it has no {name} to compare or compute with (Jinja would give 0 "
        f"and pass it under any limit); give the default to use yourself, e.g. | {name}(0)"
    )


def _int(value: Any, default: Any = _UNSET, base: int = 10) -> Any:
    from jinja2.filters import do_int

    try:
        out = do_int(value, _UNSET, base)
    except OverflowError:  # int(inf)
        out = _UNSET
    if out is _UNSET:  # neither an integer nor a finite number: "lots", NaN, inf, "1e999"
        if default is _UNSET:
            raise _not_a_number(value, "int")
        return default
    return out


def _float(value: Any, default: Any = _UNSET) -> Any:
    from jinja2.filters import do_float

    out = do_float(value, _UNSET)
    if out is _UNSET:
        if default is _UNSET:
            raise _not_a_number(value, "float")
        return default
    return out


def _extreme(stock: Any, name: str) -> Any:
    """``min``/``max`` refusing NaN among the values compared: ``[5, NaN] | max`` is 5 and
    ``[NaN, 5] | max`` is NaN (NaN is never larger), so a limit on the result saw a number where an
    item had none."""

    def checked(environment: Any, value: Any, case_sensitive: bool = False, attribute: Any = None) -> Any:
        from jinja2.filters import make_attrgetter

        items = list(value)
        getter = make_attrgetter(environment, attribute) if attribute is not None else None
        for item in items:
            ordered(getter(item) if getter is not None else item)
        return stock(environment, items, case_sensitive=case_sensitive, attribute=attribute)

    checked.jinja_pass_arg = stock.jinja_pass_arg  # type: ignore[attr-defined]
    checked.__name__ = name
    return checked


_ORDERING_TESTS = ("<", "<=", ">", ">=", "lt", "le", "gt", "ge", "lessthan", "greaterthan")


def _ordering_test(test: Any) -> Any:
    def checked(value: Any, other: Any) -> Any:
        return test(ordered(value), ordered(other))

    return checked


def _finalize(value: Any) -> Any:
    check_defined(value)
    return guard(value, "a value written by the template")


class _Environment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self) -> None:
        super().__init__(
            undefined=_Undefined, autoescape=False, finalize=_finalize, keep_trailing_newline=True
        )
        self.globals.clear()
        self.globals["range"] = _range
        keep = [
            "abs",
            "capitalize",
            "count",
            "d",
            "default",
            "dictsort",
            "first",
            "float",
            "groupby",
            "int",
            "items",
            "last",
            "length",
            "list",
            "lower",
            "map",
            "max",
            "min",
            "reject",
            "rejectattr",
            "reverse",
            "round",
            "select",
            "selectattr",
            "sort",
            "title",
            "trim",
            "truncate",
            "unique",
            "upper",
            "urlencode",
            "wordcount",
        ]
        stock = dict(self.filters)
        self.filters = {name: _guarded(stock[name], name) if name in _TEXT_FILTERS else stock[name] for name in keep}
        self.filters.update(
            join=_join, replace=_replace, tojson=_tojson, fromjson=_fromjson, string=_string, sum=_sum, int=_int, float=_float,
            min=_extreme(stock["min"], "min"), max=_extreme(stock["max"], "max"),
            _podium_iter=_iterate, _podium_concat=_concat, _podium_ordered=ordered,
        )  # fmt: skip
        # selectattr('risk', 'gt', 0.8) must not leave out the rows holding NaN either
        self.tests.update({name: _ordering_test(self.tests[name]) for name in _ORDERING_TESTS})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        in_time()
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
            if max(1, abs(left).bit_length()) * right > MAX_INT_BITS * 2 and abs(left) > 1:
                raise SecurityError(
                    f"{left} ** {right} is too large; integers are limited to {MAX_INT_BITS} bits"
                )
        elif operator == "*":
            seq, n = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(seq, str | list | tuple) and isinstance(n, int):
                if _size(seq) * max(0, n) > MAX_SIZE:
                    raise SecurityError(
                        f"repeating a value {n:,} times would exceed {MAX_SIZE:,} characters or items"
                    )
            elif (
                isinstance(left, int)
                and isinstance(right, int)
                and left.bit_length() + right.bit_length() > MAX_INT_BITS
            ):
                raise SecurityError(f"the product is too large; integers are limited to {MAX_INT_BITS} bits")
        elif operator == "+":
            if isinstance(left, str | list | tuple) and _size(left) + _size(right) > MAX_SIZE:
                raise SecurityError(f"'+' would make a value of more than {MAX_SIZE:,} characters or items")
        elif operator == "%" and isinstance(left, str):
            if _FORMAT_WIDTH.search(left):
                raise SecurityError("'%' formatting with a width or precision of 1000 or more is not allowed")
            if _format_size(left, right) > MAX_SIZE:
                raise SecurityError(
                    f"'%' formatting could make more than {MAX_SIZE:,} characters (each of its "
                    "conversions may write the whole value given); format fewer or smaller values"
                )
            return guard(left % right, "'%' formatting")
        return self.binop_table[operator](left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Data first: `steps.search.output.items` is the "items" key of the output, not dict.items.
        if isinstance(obj, Mapping) and not isinstance(obj, Undefined):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr in ("format", "format_map", "mro"):
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        in_time()
        fn = __obj
        if fn is _range or isinstance(fn, Undefined):
            return __context.call(fn, *args, **kwargs)
        owner = getattr(fn, "__self__", None)
        name = getattr(fn, "__name__", "")
        if isinstance(fn, types.BuiltinMethodType) and name in _METHODS.get(type(owner), ()):
            if name == "replace" and isinstance(owner, str) and len(args) >= 2:
                _replace_size(owner, str(args[0]), str(args[1]), args[2] if len(args) > 2 else None)
            return __context.call(fn, *args, **kwargs)
        if (
            isinstance(fn, types.MethodType)
            and isinstance(owner, LoopContext)
            and name in ("cycle", "changed")
        ):
            return __context.call(fn, *args, **kwargs)
        what = (
            f"{type(owner).__name__}.{name}()" if owner is not None and name else (name or type(fn).__name__)
        )
        raise SecurityError(
            f"calling {what} is not allowed in workflow expressions; only range() and read-only methods of "
            "text, lists and mappings (like .split() or .get()) can be called"
        )


_ENVIRONMENT: _Environment | None = None


def environment() -> _Environment:
    global _ENVIRONMENT
    if _ENVIRONMENT is None:
        _ENVIRONMENT = _Environment()
    return _ENVIRONMENT


def filter_names() -> list[str]:
    return sorted(n for n in environment().filters if not n.startswith("_"))


def check_defined(value: Any) -> None:
    stack = [value]
    seen = 0
    while stack and seen < 100_000:
        v = stack.pop()
        seen += 1
        if isinstance(v, Undefined):
            v._fail_with_undefined_error()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list | tuple):
            stack.extend(v)
