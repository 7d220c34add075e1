"""What a Python workflow's steps do beyond the text they read as: a digest beside its snapshot.

A deployed Python version is known by its snapshot (:func:`podium.engine.versions.python_snapshot`):
each step's options and *source text*. Two modules whose steps read the same but whose module-level
constants, the helpers they call, closures or default arguments differ have the same snapshot, and
in a store with users the deployed definition of a name gets that name's policy: a file of one's
own whose steps read like the deployed ones (``TARGET = "attacker"`` instead of ``"a"``) would get
it. The snapshot cannot be widened (every deployed Python version's fingerprint would change, and
its pinned runs be refused), so a new deployment records this digest too (``behaviour`` in its
meta), and a run is the deployed definition only when it has both
(:func:`podium.engine.versions.deployed_here`).

The digest covers, for each step's function, condition, loop condition and gate, and a callable
``output``:

- its code object, recursively (bytecode, constants, names, arguments), without the file name or
  line numbers: the same release imported from another path is the same definition;
- its default and keyword-only default arguments, and the values in its closure;
- each name it reads (``co_names``) that its module defines (dunder names such as ``__file__``
  left out; every name when it calls ``globals()``; the module's ``__getattr__``, and what a
  module-local ``__builtins__`` puts in place of a builtin): plain data (``str``, ``int``,
  ``float``, ``bool``, ``None``, ``bytes``, and tuples, lists, sets, frozensets and dicts of them)
  by value, dataclass instances by their fields, enum members by name, values of the standard
  library by what they hold (a path, a compiled pattern, a decimal, a date, a ``range``, a
  ``SimpleNamespace``, a read-only mapping, ...), objects of the module's own classes by their
  attributes; functions and classes of the same module the same way, recursively (a class by its
  bases, metaclass, methods and class attributes);
- anything else by name only: another module's functions (and what a decorator wraps) and
  classes, modules, instances of other modules' classes (by their class);
- the types a run's values are validated against (the workflow's input, each step's parameters and
  result): the type, and the JSON schema pydantic validates it by.

A text holding the folder of the module (a path built from its ``__file__``) holds it as
``<module folder>``. So a value a module computes as it is imported (from the environment, the
clock) and a step reads is part of the definition: a process where it differs runs another
definition. What other modules hold is not: their code is known by its name (see
docs/governance.md).

Deterministic across processes (no ``id()`` or address; sets and dicts in sorted order) and
bounded (nesting depth, a budget of values; a table of plain data counts as one). A digest whose
encoding met a bound starts with :data:`UNBOUNDED` and matches nothing: what lies past the bound
is not in it. Bytecode differs between Python versions, so the meta keeps one digest per Python
version (:data:`PYTHON`): deploying the same snapshot from another Python version adds its digest
to that version.
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import dataclasses
import enum
import functools
import hashlib
import json
import os
import sys
import types
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .workflow import Workflow

PYTHON = f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}"
"""The Python a digest was computed by (its bytecode): the key of the digest in a version's meta."""

UNBOUNDED = "unbounded:"
"""The start of a digest whose encoding met a bound (:data:`_DEPTH`, :data:`_BUDGET`): what lies
beyond it is not in the digest, so a file that differs only there would match; such a digest
matches nothing (:func:`matches`), and a deployment says so (its runs elsewhere are held by ``*``)."""

_DEPTH = 24  # nesting of values and calls followed
_BUDGET = 200_000  # values encoded per workflow (a table of plain data counts once); past either, a mark
_PLAIN = (type(None), bool, int, float, complex, str, bytes)
_SKIPPED_IN_CLASS = frozenset({"__dict__", "__weakref__", "__module__", "__qualname__", "__doc__"})
_METHODS = (types.FunctionType, staticmethod, classmethod, property)


def behaviour_digest(wf: Workflow) -> str:
    """The SHA-256 of what ``wf``'s steps depend on (see the module's docstring). Computed once
    per workflow object, when first asked (its deploy or its first check): a module-level list or
    dict that a step changes as it runs (a cache) is read as it was then."""
    if wf.behaviour is not None:
        return wf.behaviour
    enc = _Encoder()
    parts = []
    for s in wf.steps.values():
        loop = s.loop.while_ if s.loop is not None else None
        for label, fn in (("fn", s.fn), ("when", s.when), ("while", loop), ("gate", s.gate)):
            if fn is not None:
                parts.append(f"{s.id}.{label}={enc.top(fn)}")
        home = _home(s.fn)  # the types its parameters and result are validated against
        for label, binding in [(f"param {b.name}", b) for b in (*s.params, *s.when_params, *s.loop_params)]:
            if binding.validator is not None:
                parts.append(f"{s.id}.{label}:{enc.validated(binding.validator.annotation, home)}")
        if s.output_validator is not None:
            parts.append(f"{s.id}.returns:{enc.validated(s.output_validator.annotation, home)}")
    if callable(wf.output):
        parts.append(f"output={enc.top(wf.output)}")
    if wf.input_type is not None:
        home = _home(next(iter(wf.steps.values())).fn) if wf.steps else {}
        parts.append(f"input:{enc.validated(wf.input_type, home)}")
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()
    if enc.beyond:  # what lies past the bounds is not in it: it vouches for nothing (matches refuses it)
        digest = UNBOUNDED + digest
    wf.behaviour = digest
    return wf.behaviour


def recorded(meta: dict[str, Any]) -> dict[str, str] | None:
    """The digests a deployed version's meta records, by Python version; None for a version
    deployed before they were recorded (or YAML)."""
    value = meta.get("behaviour")
    return value if isinstance(value, dict) else None


def matches(wf: Workflow, meta: dict[str, Any]) -> bool:
    """Whether a Python ``wf`` whose snapshot is the version's also behaves as deployed: the meta
    records no digest (deployed before they were recorded: its snapshot alone, as then), or records
    this Python's and it is ``wf``'s. A digest of another Python only does not match."""
    digests = recorded(meta)
    if digests is None:
        return True
    mine = behaviour_digest(wf)
    return not mine.startswith(UNBOUNDED) and digests.get(PYTHON) == mine


class _Encoder:
    """Encodes values as text, following functions and classes of the module they are read in.

    Order-independent (a set of functions encodes the same whichever is met first): a function or
    class is encoded in full wherever it is met, except inside itself (``ref:NAME`` on a cycle);
    an encoding with no cycle in it is kept and reused (one with a cycle depends on the member the
    cycle was entered by: reused inside another member, it made a set of mutually recursive
    functions encode differently by the order the set was read in)."""

    def __init__(self) -> None:
        self.budget = _BUDGET
        self.beyond = False  # a bound was met: the digest cannot vouch for what lies past it
        self.folders: dict[int, tuple[str, ...]] = {}  # id of a module's namespace -> its folder's spellings
        self.path: dict[int, int] = {}  # id of a function or class being encoded -> its place on the path
        self.low = sys.maxsize  # the highest place on the path a cycle reference pointed to
        self.done: dict[int, str] = {}
        self.keep: list[object] = []  # holds what ``path`` and ``done`` name, so that no id is reused

    def top(self, fn: Any) -> str:
        return self.value(fn, 0, _home(fn))

    def validated(self, annotation: Any, home: dict[str, Any]) -> str:
        """A type a value is validated against (a step's parameter, the workflow's input): the type
        itself, and the JSON schema pydantic validates by (its fields' types and constraints,
        ``Field(le=100)``, which the class's members do not hold)."""
        try:
            from pydantic import TypeAdapter

            schema = json.dumps(TypeAdapter(annotation).json_schema(), sort_keys=True, default=str)
        except Exception as exc:  # a type pydantic has no schema for: the type alone
            schema = f"<no schema: {type(exc).__name__}>"
        return f"{self.value(annotation, 0, home)};schema={schema}"

    def follow(self, obj: Any, label: str, encode: Callable[[], str]) -> str:
        key = id(obj)
        if key in self.done:
            return self.done[key]
        if key in self.path:
            self.low = min(self.low, self.path[key])
            return f"ref:{label}"
        place = len(self.path)
        self.path[key] = place
        self.keep.append(obj)
        above, self.low = self.low, sys.maxsize
        try:
            text = encode()
        finally:
            del self.path[key]
            inner, self.low = self.low, min(above, self.low)
        if inner == sys.maxsize:  # no cycle inside it: the same wherever it is met
            self.done[key] = text  # (a text with a cycle reference depends on where the cycle was entered)
        return text

    def value(self, v: Any, depth: int, home: dict[str, Any]) -> str:
        self.budget -= 1
        if self.budget < 0 or depth > _DEPTH:
            self.beyond = True
            return "<beyond the bound>"
        try:
            return self._value(v, depth + 1, home)
        except Exception as exc:  # an object that cannot be read as it claims (a proxy): the same each time
            return f"<unreadable {_qualified(type(v))}: {type(exc).__name__}>"

    def _value(self, v: Any, d: int, home: dict[str, Any]) -> str:
        kind = type(v)
        if kind in _PLAIN:
            return f"{kind.__name__}:{self.portable(v, home)!r}" if kind is str else f"{kind.__name__}:{v!r}"
        if v is Ellipsis:
            return "..."
        if isinstance(v, enum.Enum):
            return f"enum:{self.kind(kind, d, home)}.{v.name}"
        table = self.table(v, kind, home)  # a table of plain data: in full, however long (one value)
        if table is not None:
            return table
        name = kind.__name__ if kind in (tuple, list, set, frozenset, dict) else self.kind(kind, d, home)
        if isinstance(v, collections.defaultdict):  # what a missing key gets is part of it
            name = f"{name}[{self.value(v.default_factory, d, home)}]"
        if kind.__module__ == home.get("__name__") and getattr(v, "__dict__", None):  # its own attributes too
            name = f"{name}[{self.fields(v, d, home)}]"
        if isinstance(v, (tuple, list)):
            return f"{name}({','.join(self.value(x, d, home) for x in v)})"
        if isinstance(v, (set, frozenset)):
            return f"{name}({','.join(sorted(self.value(x, d, home) for x in v))})"
        if isinstance(v, dict):
            pairs = sorted(f"{self.value(k, d, home)}:{self.value(x, d, home)}" for k, x in v.items())
            return f"{name}({','.join(pairs)})"
        for base in (str, bytes, int, float):
            if isinstance(v, base):
                return f"{name}:{base.__repr__(v)}"
        if kind is types.CodeType:
            return self.code(v, d, home)
        if kind is types.FunctionType:
            if v.__globals__ is home:
                return self.function(v, d)
            # another module's, by name (its module's own: a wrapper copies the name of what it wraps)
            wrapped = getattr(v, "__wrapped__", None)
            inner = f"(wraps {self.value(wrapped, d, home)})" if wrapped is not None else ""
            return f"function:{v.__globals__.get('__name__')}.{v.__qualname__}{inner}"
        if kind in (staticmethod, classmethod):
            return f"{kind.__name__}({self.value(v.__func__, d, home)})"
        if kind is property:
            return f"property({','.join(self.value(f, d, home) for f in (v.fget, v.fset, v.fdel))})"
        if kind is types.MethodType:
            return f"method({self.value(v.__func__, d, home)},of:{self.kind(type(v.__self__), d, home)})"
        if kind is functools.partial:
            held = (v.func, v.args, v.keywords)
            return f"partial({','.join(self.value(x, d, home) for x in held)})"
        if kind is types.ModuleType:
            return f"module:{v.__name__}"
        if kind is types.BuiltinFunctionType:
            return f"builtin:{getattr(v.__self__, '__name__', '')}.{v.__qualname__}"
        if typing.get_origin(v) is not None:  # list[int], Annotated[int, Le(100)]: by what they name
            return f"typing:{self.value(typing.get_origin(v), d, home)}[{self.value(typing.get_args(v), d, home)}]"
        if isinstance(v, type):
            return self.kind(v, d, home)
        if dataclasses.is_dataclass(v):  # structured data: by its fields' values
            fields = [f"{f.name}={self.value(getattr(v, f.name, None), d, home)}" for f in dataclasses.fields(v)]
            return f"{name}({','.join(fields)})"
        as_data = next((_VALUES[c] for c in kind.__mro__ if c in _values()), None)
        if as_data is not None:  # a value of the standard library (a path, a pattern, a decimal...): by it
            return f"{name}({self.value(as_data(v), d, home)})"
        if kind.__module__ == home.get("__name__") or kind is types.SimpleNamespace:
            # an object of the module's own class (or a namespace): by what it holds, like a dataclass
            return self.follow(v, f"object {kind.__qualname__}", lambda: f"object:{name}({self.fields(v, d, home)})")
        return f"object:{name}"

    def fields(self, v: Any, d: int, home: dict[str, Any]) -> str:
        """An object's attributes (its ``__dict__`` and slots), by name."""
        held = dict(vars(v)) if hasattr(v, "__dict__") else {}
        for c in type(v).__mro__:
            slots = c.__dict__.get("__slots__", ())
            for slot in [slots] if isinstance(slots, str) else slots:
                if slot.startswith("__") and not slot.endswith("__"):  # stored under its mangled name
                    slot = f"_{c.__name__.lstrip('_')}{slot}"
                if slot not in ("__dict__", "__weakref__") and slot not in held:
                    held[slot] = getattr(v, slot, _UNSET)
        return ";".join(f"{k}={'<unset>' if x is _UNSET else self.value(x, d, home)}" for k, x in sorted(held.items()))

    def table(self, v: Any, kind: type, home: dict[str, Any]) -> str | None:
        """A tuple, list, set or dict of plain values (not a subclass) as :meth:`value` encodes it
        element by element, counted as one value: a large table is not cut off by the budget."""
        if kind is dict:
            if not all(type(k) in _PLAIN and type(x) in _PLAIN for k, x in v.items()):
                return None
            pairs = sorted(f"{self.plain(k, home)}:{self.plain(x, home)}" for k, x in v.items())
            return f"dict({','.join(pairs)})"
        if kind not in (tuple, list, set, frozenset) or not all(type(x) in _PLAIN for x in v):
            return None
        items = [self.plain(x, home) for x in v]
        return f"{kind.__name__}({','.join(items if kind in (tuple, list) else sorted(items))})"

    def plain(self, v: Any, home: dict[str, Any]) -> str:
        kind = type(v)
        return f"{kind.__name__}:{self.portable(v, home)!r}" if kind is str else f"{kind.__name__}:{v!r}"

    def portable(self, text: str, home: dict[str, Any]) -> str:
        """``text``, with the folder of the module it is read in (a path a module builds from its
        ``__file__``) as ``<module folder>``: the same release in another folder is the same code."""
        if "/" not in text and "\\" not in text:
            return text
        key = id(home)
        if key not in self.folders:
            where = home.get("__file__")
            spellings: set[str] = set()
            if isinstance(where, str) and where:
                folder = os.path.dirname(os.path.abspath(where))
                spellings = {folder, os.path.realpath(folder)} - {os.path.dirname(folder)}  # never the root
            self.folders[key] = tuple(sorted(spellings, key=len, reverse=True))
        for folder in self.folders[key]:
            if text == folder or text.startswith(folder + os.sep):
                return "<module folder>" + text[len(folder) :]
        return text

    def kind(self, c: type, depth: int, home: dict[str, Any]) -> str:
        """A class: by its qualified name, or (one of the same module) by what it holds."""
        if c.__module__ == home.get("__name__"):
            return self.cls(c, depth, home)
        return f"class:{_qualified(c)}"

    def function(self, f: types.FunctionType, depth: int) -> str:
        return self.follow(f, f.__qualname__, lambda: self._function(f, depth))

    def _function(self, f: types.FunctionType, depth: int) -> str:
        home = f.__globals__
        cells = []
        for cell in f.__closure__ or ():
            try:
                cells.append(self.value(cell.cell_contents, depth, home))
            except ValueError:  # a cell not filled yet
                cells.append("<empty cell>")
        used = _names(f.__code__)
        if "globals" in used and "globals" not in home:  # globals()[name]: any of the module's names
            used |= set(home)
        names = sorted(n for n in used if n in home and not _special(n))  # __file__: a path
        if callable(home.get("__getattr__")):  # a name the module lacks is what its __getattr__ gives
            names.append("__getattr__")
        read = [f"{n}={self.value(home[n], depth, home)}" for n in names]
        builtins_ = getattr(f, "__builtins__", None)
        if isinstance(builtins_, dict) and builtins_ is not vars(builtins):  # the module set __builtins__
            mine = sorted(n for n in used if n not in home and n in builtins_ and builtins_[n] is not vars(builtins).get(n, _UNSET))
            read += [f"builtins.{n}={self.value(builtins_[n], depth, home)}" for n in mine]
        return (
            f"def {f.__qualname__}({self.code(f.__code__, depth, home)};"
            f"defaults={self.value(f.__defaults__, depth, home)};"
            f"kwdefaults={self.value(f.__kwdefaults__, depth, home)};"
            f"closure=[{','.join(cells)}];reads=[{';'.join(read)}])"
        )

    def code(self, co: types.CodeType, depth: int, home: dict[str, Any]) -> str:
        consts = ",".join(self.value(c, depth + 1, home) for c in co.co_consts)
        shape = (
            co.co_argcount, co.co_posonlyargcount, co.co_kwonlyargcount, co.co_flags,
            co.co_names, co.co_varnames, co.co_freevars, co.co_cellvars,
        )  # fmt: skip
        return f"code:{co.co_name}:{shape!r}:{co.co_code.hex()}:[{consts}]"

    def cls(self, c: type, depth: int, home: dict[str, Any]) -> str:
        return self.follow(c, c.__qualname__, lambda: self._cls(c, depth, home))

    def _cls(self, c: type, depth: int, home: dict[str, Any]) -> str:
        bases = ",".join(self.value(b, depth, home) for b in c.__bases__)
        if type(c) is not type:  # a metaclass decides what reading the class's attributes gives
            bases += f";metaclass={self.value(type(c), depth, home)}"
        members = []
        for name, member in sorted(vars(c).items()):
            if name in _SKIPPED_IN_CLASS or (_special(name) and not isinstance(member, _METHODS)):
                continue
            members.append(f"{name}={self.value(member, depth, home)}")
        return f"class {c.__qualname__}({bases}):[{';'.join(members)}]"


_UNSET = object()


def _home(fn: Any) -> dict[str, Any]:
    """The namespace of the module ``fn`` was written in: through the function a partial, method or
    decorator holds."""
    inner = fn
    for _ in range(_DEPTH):
        if isinstance(inner, functools.partial):
            inner = inner.func
        elif isinstance(inner, types.MethodType):
            inner = inner.__func__
        elif hasattr(inner, "__wrapped__"):
            inner = inner.__wrapped__
        else:
            break
    home = getattr(inner, "__globals__", None)
    return home if isinstance(home, dict) else {}


_VALUES: dict[type, Callable[[Any], Any]] = {}
"""Values of the standard library a module holds as data, by type: what each is (plain data)."""


def _values() -> dict[type, Callable[[Any], Any]]:
    """:data:`_VALUES`, filled when first asked (their modules imported then, not with Podium's)."""
    if not _VALUES:
        import array
        import collections as c
        import datetime as dt
        import decimal
        import fractions
        import ipaddress
        import operator
        import pathlib
        import re
        import uuid

        def zone(v: Any) -> Any:
            return getattr(v, "key", None) or (v.utcoffset(None), v.tzname(None))

        _VALUES.update({
            re.Pattern: lambda v: (v.pattern, v.flags),
            decimal.Decimal: str, fractions.Fraction: str, uuid.UUID: str,
            dt.date: lambda v: v.isoformat(), dt.timedelta: lambda v: (v.days, v.seconds, v.microseconds),
            dt.datetime: lambda v: (v.isoformat(), v.tzinfo and zone(v.tzinfo)),
            dt.time: lambda v: (v.isoformat(), v.tzinfo and zone(v.tzinfo)), dt.timezone: zone,
            range: lambda v: (v.start, v.stop, v.step), slice: lambda v: (v.start, v.stop, v.step),
            bytearray: bytes, memoryview: lambda v: v.tobytes(), types.MappingProxyType: dict,
            c.deque: lambda v: (list(v), v.maxlen), array.array: lambda v: (v.typecode, v.tolist()),
            operator.itemgetter: lambda v: v.__reduce__()[1], operator.attrgetter: lambda v: v.__reduce__()[1],
            operator.methodcaller: lambda v: v.__reduce__()[1:],
        })  # fmt: skip
        shown: tuple[type, ...] = (pathlib.PurePosixPath, pathlib.PureWindowsPath, pathlib.PosixPath, pathlib.WindowsPath)
        shown += (ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Network, ipaddress.IPv6Network)
        _VALUES.update(dict.fromkeys(shown, str))
        with contextlib.suppress(ImportError):
            import zoneinfo

            _VALUES[zoneinfo.ZoneInfo] = zone
        _VALUES[type(typing.Union)] = repr  # typing.Union, typing.Annotated: one class, told apart by name
    return _VALUES


def _names(co: types.CodeType) -> set[str]:
    """Every name ``co`` and the code nested in it (comprehensions, inner functions) read."""
    found = set(co.co_names)
    for c in co.co_consts:
        if isinstance(c, types.CodeType):
            found |= _names(c)
    return found


def _special(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _qualified(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"
