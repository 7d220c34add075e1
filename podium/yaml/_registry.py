"""Step types: what a step's ``uses:`` names, and the extension point for new kinds.

A step type is a function plus a JSON Schema for its ``with:`` arguments. The function is called
like a Python step: with the rendered arguments as keywords (and ``ctx``, the
:class:`~podium.StepContext`, if it declares one), sync or async. The schema is checked when a file
is validated (missing, unknown and mistyped arguments) and again, on the rendered values, before
each call. Plug-ins add kinds with :func:`register_step_type`, or ship a :class:`StepType` in the
``podium.step_types`` entry-point group, which a registry loads the first time a kind is missing.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import DefinitionError, StepError
from ._schema import check_schema

log = logging.getLogger("podium.yaml")

ENTRY_POINT_GROUP = "podium.step_types"
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(frozen=True, kw_only=True, slots=True)
class StepType:
    """A kind of step that workflow files can use by name (``uses: sleep``)."""

    name: str
    """The name in ``uses:``: lowercase letters, digits, ``_`` and ``-``."""
    fn: Callable[..., Any]
    """Called with the rendered ``with:`` arguments as keywords, plus ``ctx`` if it has such a
    parameter. Sync functions run in the engine's thread pool."""
    args: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})
    """JSON Schema (an object schema) of the ``with:`` arguments."""
    output: Mapping[str, Any] | None = None
    """JSON Schema of what it returns, if known (lets validation type-check later uses)."""
    description: str = ""
    concurrency: str | None = None
    """Default concurrency class (``Client(limits={...})``), e.g. ``"llm"``."""
    capabilities: Callable[[Mapping[str, Any]], list[Any]] | None = None
    """What the step reaches outside the engine, found in its (unrendered) ``with:`` mapping: a list
    of :class:`podium.governance.capabilities.Use`. Validation refuses templates in those fields and
    names the registry does not hold, with the file, line and column."""

    @property
    def takes_ctx(self) -> bool:
        try:
            return "ctx" in inspect.signature(self.fn).parameters
        except (TypeError, ValueError):
            return False

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)


class StepTypes:
    """A registry of step types. :data:`default_registry` holds the built-in ones; build your own
    (``StepTypes(builtin_step_types())``) to give one loader a different set."""

    def __init__(self, types: Iterable[StepType] = (), *, entry_points: bool = True) -> None:
        self._types: dict[str, StepType] = {}
        self._entry_points = entry_points
        self._scanned = False
        self.load_errors: dict[str, str] = {}
        """Entry points that failed to load, by name, with the reason."""
        for t in types:
            self.add(t)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[StepType]:
        self._load_plugins()
        return iter(sorted(self._types.values(), key=lambda t: t.name))

    def names(self) -> list[str]:
        """Every kind's name, plug-ins included (so that listings do not depend on what was looked up)."""
        self._load_plugins()
        return sorted(self._types)

    def copy(self) -> StepTypes:
        new = StepTypes(self._types.values(), entry_points=self._entry_points)
        new._scanned = self._scanned
        return new

    def add(self, step_type: StepType, *, replace: bool = False) -> StepType:
        """Add a :class:`StepType`. Raises :class:`DefinitionError` if the name is taken (unless
        ``replace``) or its schema is not usable."""
        name = step_type.name
        if not isinstance(name, str) or not _NAME.match(name):
            raise DefinitionError(
                f"step type name {name!r} is not valid: use lowercase letters, digits, '_' and '-', starting "
                "with a letter ('package.module:function' names are Python steps, not registered types)"
            )
        if name in self._types and not replace:
            raise DefinitionError(
                f"step type {name!r} is already registered; pass replace=True to override it"
            )
        if not callable(step_type.fn):
            raise DefinitionError(f"step type {name!r}: fn must be callable")
        problems = check_schema(step_type.args, f"step type {name!r} args")
        if not problems and step_type.args.get("type", "object") != "object":
            problems.append(f"step type {name!r}: args must be an object schema (type: object)")
        if problems:
            raise DefinitionError("; ".join(problems), problems)
        self._types[name] = step_type
        return step_type

    def register(
        self,
        name: str,
        fn: Callable[..., Any] | None = None,
        *,
        args: Mapping[str, Any] | None = None,
        output: Mapping[str, Any] | None = None,
        description: str = "",
        concurrency: str | None = None,
        replace: bool = False,
    ) -> Any:
        """Register ``fn`` as step type ``name``; usable as a decorator when ``fn`` is omitted."""

        def add(f: Callable[..., Any]) -> Callable[..., Any]:
            self.add(
                StepType(
                    name=name,
                    fn=f,
                    args=args if args is not None else {"type": "object"},
                    output=output,
                    description=description or (inspect.getdoc(f) or "").split("\n")[0],
                    concurrency=concurrency,
                ),
                replace=replace,
            )
            return f

        return add(fn) if fn is not None else add

    def get(self, name: str) -> StepType | None:
        found = self._types.get(name)
        if found is None:
            self._load_plugins()
            found = self._types.get(name)
        return found

    def _load_plugins(self) -> None:
        if not self._entry_points or self._scanned:
            return
        self._scanned = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in self._types:
                continue
            try:
                obj = ep.load()
                if not isinstance(obj, StepType):
                    raise TypeError(f"{ep.value} is a {type(obj).__name__}, not a podium.yaml.StepType")
                self.add(obj)
            except Exception as exc:
                self.load_errors[ep.name] = f"{type(exc).__name__}: {exc}"
                log.warning("step type plug-in %r (%s) failed to load: %s", ep.name, ep.value, exc)


# -- the built-in kinds --------------------------------------------------------------------------


async def _set(**values: Any) -> dict[str, Any]:
    """Returns its arguments: name values once, use them later as steps.<id>.output.<name>."""
    return values


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


async def _log(ctx: Any, message: Any, level: str = "info") -> Any:
    """Writes a message to the step log (with run and step ids) and returns it."""
    ctx.log.log(_LEVELS[level], "%s", message)
    return message


async def _sleep(ctx: Any, seconds: float) -> None:
    """Waits for a number of seconds on a durable timer: a long wait parks the run (no process held)."""
    # ctx.sleep: a resumed run waits only for what is left, as a Python step's ctx.sleep does
    if seconds > 0:
        await ctx.sleep(seconds)


async def _fail(message: str, retryable: bool = False) -> None:
    """Fails the step with a message (not retried unless retryable is true)."""
    raise StepError(message, non_retryable=not retryable)


async def _subworkflow(**_: Any) -> None:  # pragma: no cover - compiled specially, never called
    raise RuntimeError("subworkflow steps are compiled by the loader")


SUBWORKFLOW = "subworkflow"


def builtin_step_types() -> list[StepType]:
    """The step types every registry starts from."""
    return [
        StepType(
            name="set",
            fn=_set,
            args={"type": "object", "description": "Any named values; the step returns them as a mapping."},
            output={"type": "object"},
            description=_set.__doc__ or "",
        ),
        StepType(
            name="log",
            fn=_log,
            args={
                "type": "object",
                "properties": {
                    "message": {"description": "What to log (usually a template)."},
                    "level": {"type": "string", "enum": list(_LEVELS), "default": "info"},
                },
                "required": ["message"],
                "additionalProperties": False,
            },
            description=_log.__doc__ or "",
        ),
        StepType(
            name="sleep",
            fn=_sleep,
            args={
                "type": "object",
                "properties": {"seconds": {"type": "number", "minimum": 0, "maximum": 86400}},
                "required": ["seconds"],
                "additionalProperties": False,
            },
            output={"type": "null"},
            description=_sleep.__doc__ or "",
        ),
        StepType(
            name="fail",
            fn=_fail,
            args={
                "type": "object",
                "properties": {
                    "message": {"type": "string"},
                    "retryable": {"type": "boolean", "default": False},
                },
                "required": ["message"],
                "additionalProperties": False,
            },
            output={"type": "null"},
            description=_fail.__doc__ or "",
        ),
        StepType(
            name=SUBWORKFLOW,
            fn=_subworkflow,
            args={
                "type": "object",
                "properties": {
                    "workflow": {
                        "type": "string",
                        "description": "Another workflow file (path relative to this one) or MODULE:WORKFLOW; "
                        "not templated.",
                    },
                    "input": {"description": "The child run's input (default: this run's input)."},
                },
                "required": ["workflow"],
                "additionalProperties": False,
            },
            description="Runs another workflow as a child run and returns its output.",
        ),
    ]


default_registry = StepTypes(builtin_step_types())
"""The registry that loaders use unless given another."""


def register_step_type(name: str, fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Register a step type in :data:`default_registry` (see :meth:`StepTypes.register`)::

    @register_step_type("shout", args={"type": "object", "properties": {"text": {"type": "string"}},
                                        "required": ["text"]})
    def shout(text: str) -> str:
        return text.upper()
    """
    return default_registry.register(name, fn, **options)
