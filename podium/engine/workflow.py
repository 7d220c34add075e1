"""Workflow definitions: a named, versioned graph of steps, checked before it runs."""

from __future__ import annotations

import difflib
import inspect
import sys
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import DefinitionError, InputValidationError
from ..governance.limits import value_problem
from ..governance.policy import workflow_name_problem
from ..records import NO_RETRY, RetryPolicy

INPUT = "input"
"""Parameter name bound to the run's input."""
CTX = "ctx"
"""Parameter name bound to the :class:`StepContext`."""

_RESERVED = {INPUT, CTX}
_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True, kw_only=True, slots=True)
class Loop:
    """Route back from a step to an earlier one while ``while_`` holds, like an agent loop.

    ``while_`` takes parameters by name, like a step (earlier steps' outputs, ``input``), and is
    evaluated after the looping step finishes. The run fails with a clear error if the condition still
    holds after ``max_iterations`` passes through the loop.
    """

    to: str
    """The step where the next iteration starts (the looping step itself, or one it depends on)."""
    max_iterations: int
    """Upper bound on passes through the loop; required so that a loop always ends."""
    while_: Callable[..., Any]
    """Loop again while this returns true."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Escalate:
    """Ask a person when a step is not sure: after the step returns, if the confidence in its output
    is below ``below``, the run parks in the approvals inbox with the output; the approver passes
    it, edits it (the step's output becomes the edited value) or rejects it (the step fails).

    ``@wf.step(escalate=Escalate(below=0.8))`` on a step returning a classification, a route
    decision, or a dict with a ``confidence``.
    """

    below: float
    """Confidence (0 to 1) under which a person decides."""
    field: str = "confidence"
    """Where the output holds its confidence: an attribute or key, dotted for nested ones."""
    role: str | None = None
    """Only holders of this role (or admins) may decide."""
    title: str = ""
    """What the approver sees (default: the step and its confidence)."""
    timeout: float | None = None
    """Seconds to wait for a person; then ``on_timeout`` applies."""
    on_timeout: str = "reject"
    """``reject`` (the step fails) or ``accept`` (the output stands) when nobody decides in time."""

    def __post_init__(self) -> None:
        if not 0 <= self.below <= 1:
            raise DefinitionError(f"Escalate(below=...) must be between 0 and 1, got {self.below!r}")
        if self.on_timeout not in ("reject", "accept"):
            raise DefinitionError(f"Escalate on_timeout must be 'reject' or 'accept', got {self.on_timeout!r}")


class _Validator:
    """Checks (and coerces) a value against a type annotation, through pydantic, imported lazily."""

    __slots__ = ("_adapter", "annotation")

    def __init__(self, annotation: Any) -> None:
        self.annotation = annotation
        self._adapter: Any = None

    def __call__(self, value: Any, where: str) -> Any:
        if self._adapter is None:
            from pydantic import TypeAdapter

            self._adapter = TypeAdapter(self.annotation)
        try:
            return self._adapter.validate_python(value)
        except Exception as exc:
            name = getattr(self.annotation, "__name__", repr(self.annotation))
            got = "no input" if value is None else type(value).__name__
            raise InputValidationError(f"{where}: expected {name}, got {got}: {_problems(exc)}") from None


def _problems(exc: Exception) -> str:
    """pydantic's errors as ``field: message`` (no links, no repeated input), else the text."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc).replace("\n", "; ")
    parts = []
    for err in errors(include_url=False):
        loc = ".".join(str(x) for x in err.get("loc", ()))
        parts.append(f"{loc}: {err.get('msg', '')}" if loc else str(err.get("msg", "")))
    return "; ".join(parts) or str(exc).replace("\n", "; ")


def _validator_for(annotation: Any) -> _Validator | None:
    if annotation is _EMPTY or annotation is Any or annotation is inspect.Signature.empty:
        return None
    return _Validator(annotation)


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)  # Annotated constraints are checked too
    except Exception:
        # Annotations naming classes that are not importable at definition time (local classes with
        # postponed evaluation): those values are passed through unchecked.
        return {}


@dataclass(kw_only=True, slots=True)
class _Binding:
    """How one parameter of a step (or condition) gets its value."""

    name: str
    source: str  # "ctx", "input", a step id, or "default"
    has_default: bool
    default: Any = None
    validator: _Validator | None = None


def _bindings(fn: Callable[..., Any], *, allow_ctx: bool) -> list[_Binding]:
    sig = inspect.signature(fn)
    hints = _type_hints(fn)
    out = []
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        ann = hints.get(p.name, p.annotation)
        is_ctx = p.name == CTX or (isinstance(ann, type) and ann.__name__ == "StepContext")
        if is_ctx and allow_ctx:
            out.append(_Binding(name=p.name, source=CTX, has_default=False))
            continue
        out.append(
            _Binding(
                name=p.name,
                source=p.name,
                has_default=p.default is not _EMPTY,
                default=None if p.default is _EMPTY else p.default,
                validator=_validator_for(ann),
            )
        )
    return out


@dataclass(kw_only=True, slots=True)
class StepDef:
    """A step of a workflow, as defined. Build with :meth:`Workflow.step`."""

    id: str
    fn: Callable[..., Any]
    is_async: bool
    params: list[_Binding]
    needs: tuple[str, ...] = ()
    when: Callable[..., Any] | None = None
    when_params: list[_Binding] = field(default_factory=list)
    map: str | None = None
    max_parallel: int | None = None
    retry: RetryPolicy = NO_RETRY
    timeout: float | None = None
    kind: str | None = None
    loop: Loop | None = None
    loop_params: list[_Binding] = field(default_factory=list)
    on_error: str = "fail"
    output_validator: _Validator | None = None
    child: Workflow | None = None
    labels: tuple[str, ...] = ()
    """Worker labels this step needs (``gpu``, ``bulk``): only workers that have them run it."""
    escalate: Escalate | None = None
    gate: Callable[..., Any] | None = None
    """Checks the output before it is recorded: ``await gate(ctx, output)`` returns the output to
    record (possibly with rows set aside) or raises; see :class:`podium.ml.Gate`."""
    executor: str | None = None
    """Where the work runs (``"ray"``; see :mod:`podium.engine.remote`); None: in this process."""
    description: str = ""
    # Filled by Workflow.freeze():
    deps: tuple[str, ...] = ()
    """Every step this one waits for: data dependencies, ``needs``, condition inputs, loop order."""
    data_deps: frozenset[str] = frozenset()
    dependents: tuple[str, ...] = ()
    source_line: str = ""

    takes_ctx: bool = False
    labels_text: str = ""
    fast: bool = False
    """Whether the executor may await the function directly (async; no context, timeout, limit,
    child run or output check). Set by freeze()."""


class Workflow:
    """A named, versioned graph of steps.

    Steps are plain functions, sync or async, registered with :meth:`step`. A step's parameters say
    what it needs, by name: ``input`` is the run input, ``ctx`` the :class:`StepContext`, and any other
    name is the output of the step with that id. Steps whose inputs are ready run in parallel.
    """

    def __init__(
        self,
        name: str,
        *,
        version: str = "1",
        input: Any = None,
        output: str | Callable[..., Any] | None = None,
        timeout: float | None = None,
        description: str = "",
    ) -> None:
        if not name or not isinstance(name, str):
            raise DefinitionError("a workflow needs a non-empty string name: Workflow('orders')")
        problem = workflow_name_problem(name)
        if problem:
            raise DefinitionError(f"Workflow({name!r}): {problem}")
        self.name = name
        self.version = str(version)
        self.description = description
        self.input_type = input
        self._input_validator = _validator_for(input) if input is not None else None
        self.output = output
        self.timeout = timeout
        self.steps: dict[str, StepDef] = {}
        self._frozen = False
        self.order: tuple[str, ...] = ()
        self.roots: tuple[str, ...] = ()
        self.loop_bodies: dict[str, tuple[str, ...]] = {}
        self.loop_restarts: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {}
        """Per looping step, its body's steps in order, each with the body steps it waits for (set by
        freeze(): a pass that goes round again makes no set of them)."""
        self.output_params: list[_Binding] = []
        self.module: str | None = sys._getframe(1).f_globals.get("__name__")
        self.ref: str | None = None
        """How to load this workflow in another process (``module:attr`` or a YAML path); set by loaders."""
        self.declared_version = self.version
        """The version written in the definition (``version`` may become ``1.2`` when deployed)."""
        self.source_text: str | None = None
        """A YAML workflow's text (its fingerprint); None for Python workflows."""
        self.source_dir: str | None = None
        """The folder a YAML workflow's text resolved code or files in (``uses: module:function``, a
        subworkflow file); None when it resolved none (or is Python)."""
        self.behaviour: str | None = None
        """A Python workflow's digest of what its steps depend on beyond their text, once computed
        (:func:`podium.engine.behaviour.behaviour_digest`)."""
        self.resolved_by: Any = None  # the client that matched it to a deployed version
        self.deployed_in: Any = None
        """The :class:`~podium.engine.versions.Deployments` (a client's, over one store) in whose store
        this definition is the deployed version ``name@version`` (its fingerprint the deployment's).
        In a store with users, only then does the policy named after it apply in full
        (:mod:`podium.governance.bound`)."""

    def __repr__(self) -> str:
        return f"<Workflow {self.name} v{self.version} ({len(self.steps)} steps)>"

    # -- definition -----------------------------------------------------------------------------

    def step(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        id: str | None = None,
        needs: Sequence[str] = (),
        when: Callable[..., Any] | None = None,
        map: str | None = None,
        max_parallel: int | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        kind: str | None = None,
        loop: Loop | None = None,
        on_error: str = "fail",
        labels: Sequence[str] = (),
        escalate: Escalate | None = None,
        gate: Callable[..., Any] | None = None,
        executor: str | None = None,
    ) -> Any:
        """Register a step. Use as ``@wf.step`` or ``@wf.step(retry=RetryPolicy(max_attempts=3))``.

        :param id: step id (default: the function name).
        :param needs: steps to wait for without taking their output.
        :param when: run only if this returns true (parameters by name, like a step); otherwise the
            step is recorded as skipped. A step that takes a skipped step's output is skipped too,
            unless that parameter has a default, which it then receives.
        :param map: fan out: run once per item of this step's output (or of ``input``); the parameter
            with that name receives one item, and dependents receive the list of results, in order.
        :param max_parallel: with ``map``, how many items run at once.
        :param retry: the retry policy (default: one attempt).
        :param timeout: seconds one attempt may take.
        :param kind: a concurrency class; ``Client(limits={kind: n})`` caps running steps of that kind.
        :param loop: a :class:`Loop` routing back to an earlier step.
        :param on_error: ``"fail"`` (the run fails) or ``"continue"`` (the step is recorded failed and
            treated like a skipped step by its dependents).
        :param labels: worker labels the step needs (``["gpu"]``); an engine without them hands the
            run to a worker that has them (``podium worker --label gpu``).
        :param escalate: an :class:`Escalate`: a person approves, edits or rejects the output when
            its confidence is low.
        :param gate: a data-quality gate over the output (:class:`podium.ml.Gate`, or any async
            ``gate(ctx, output) -> output``): it runs after the function and before the output is
            recorded, and may halt the run for a person, set bad rows aside, or warn.
        :param executor: run the function elsewhere, e.g. ``"ray"`` (docs/ml.md); its result is
            recorded like any step's. A step taking ``ctx`` runs here; ``ctx.call(fn, executor=ctx.executor)`` sends work there.
        """

        def register(f: Callable[..., Any]) -> Callable[..., Any]:
            self._add(
                f,
                id=id or getattr(f, "__name__", None),
                needs=needs,
                when=when,
                map=map,
                max_parallel=max_parallel,
                retry=retry,
                timeout=timeout,
                kind=kind,
                loop=loop,
                on_error=on_error,
                labels=labels,
                escalate=escalate,
                gate=gate,
                executor=executor,
            )
            return f

        return register(fn) if fn is not None else register

    def subworkflow(
        self,
        id: str,
        workflow: Workflow,
        *,
        input: Callable[..., Any] | None = None,
        needs: Sequence[str] = (),
        when: Callable[..., Any] | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
    ) -> None:
        """Add a step that runs ``workflow`` as a child run and waits for its output.

        ``input`` maps earlier outputs (parameters by name) to the child's input; by default the
        child gets this run's input. The child run is linked to this run and step, and its id is
        fixed by them, so a resumed parent never starts the child twice.
        """
        if not isinstance(workflow, Workflow):
            raise DefinitionError(
                f"step {id!r}: subworkflow() needs a Workflow, got {type(workflow).__name__}"
            )

        def _identity(input: Any) -> Any:
            return input

        self._add(
            input or _identity,
            id=id,
            needs=needs,
            when=when,
            map=None,
            max_parallel=None,
            retry=retry,
            timeout=timeout,
            kind=None,
            loop=None,
            on_error="fail",
            labels=(),
            escalate=None,
            gate=None,
            executor=None,
            child=workflow,
        )

    def _add(
        self, fn: Callable[..., Any], *, id: str | None, child: Workflow | None = None, **opts: Any
    ) -> None:
        if self._frozen:
            raise DefinitionError(
                f"workflow {self.name!r} has already run; define every step before the first run "
                f"(adding step {id!r})"
            )
        if not callable(fn):
            raise DefinitionError(
                f"step {id!r} of workflow {self.name!r} must be a function, got {type(fn).__name__}"
            )
        if not id or not isinstance(id, str) or not id.replace("_", "a").replace("-", "a").isalnum():
            raise DefinitionError(
                f"step id {id!r} in workflow {self.name!r} is not valid: use letters, digits, '_' and '-'"
            )
        if id in _RESERVED:
            raise DefinitionError(f"step id {id!r} in workflow {self.name!r} is reserved; rename the step")
        if id in self.steps:
            raise DefinitionError(
                f"workflow {self.name!r} has two steps named {id!r} (defined at {self.steps[id].source_line} "
                f"and {_where(fn)}); give one a different id with @wf.step(id=...)"
            )
        on_error = opts["on_error"]
        if on_error not in ("fail", "continue"):
            raise DefinitionError(f"step {id!r}: on_error must be 'fail' or 'continue', got {on_error!r}")
        timeout = opts["timeout"]
        if timeout is not None and timeout <= 0:
            raise DefinitionError(
                f"step {id!r}: timeout must be a positive number of seconds, got {timeout!r}"
            )
        max_parallel = opts["max_parallel"]
        if max_parallel is not None and (not opts["map"] or max_parallel < 1):
            raise DefinitionError(f"step {id!r}: max_parallel needs map=... and must be >= 1")
        loop = opts["loop"]
        if loop is not None:
            if not isinstance(loop, Loop):
                raise DefinitionError(
                    f"step {id!r}: loop must be a podium.Loop(to=..., while_=..., max_iterations=...)"
                )
            if loop.max_iterations < 1:
                raise DefinitionError(f"step {id!r}: loop max_iterations must be >= 1")
        retry = opts["retry"]
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise DefinitionError(
                f"step {id!r}: retry must be a podium.RetryPolicy, got {type(retry).__name__}"
            )
        escalate = opts["escalate"]
        if escalate is not None and not isinstance(escalate, Escalate):
            raise DefinitionError(
                f"step {id!r}: escalate must be a podium.Escalate(below=...), got {type(escalate).__name__}"
            )
        gate = opts["gate"]
        if gate is not None and not callable(gate):
            raise DefinitionError(
                f"step {id!r}: gate must be a podium.ml.Gate (or an async gate(ctx, output)), got {type(gate).__name__}"
            )
        if opts["executor"] is not None and not (isinstance(opts["executor"], str) and opts["executor"]):
            raise DefinitionError(f"step {id!r}: executor must be a name like 'ray', got {opts['executor']!r}")
        hints = _type_hints(fn)
        ret = hints.get("return", _EMPTY)
        self.steps[id] = StepDef(
            id=id,
            fn=fn,
            is_async=inspect.iscoroutinefunction(fn),
            params=_bindings(fn, allow_ctx=True),
            needs=tuple(opts["needs"]),
            when=opts["when"],
            when_params=_bindings(opts["when"], allow_ctx=False) if opts["when"] else [],
            map=opts["map"],
            max_parallel=max_parallel,
            retry=retry or NO_RETRY,
            timeout=timeout,
            kind=opts["kind"],
            loop=loop,
            loop_params=_bindings(loop.while_, allow_ctx=False) if loop else [],
            on_error=on_error,
            labels=tuple(sorted(opts["labels"])),
            labels_text=",".join(sorted(opts["labels"])),
            output_validator=None if ret in (None, type(None)) or child is not None else _validator_for(ret),
            child=child,
            escalate=escalate,
            gate=gate,
            executor=opts["executor"],
            description=(inspect.getdoc(fn) or "").split("\n")[0],
            source_line=_where(fn),
        )

    # -- checking -------------------------------------------------------------------------------

    def validate_start_input(self, value: Any) -> Any:
        """:meth:`validate_input` for an input from outside (``Client.start``, ``Client.fork``: every
        surface and trigger): first the limits of :mod:`podium.governance.limits`, so that NaN,
        Infinity and deep nesting are refused on every path, not only over HTTP (a lone surrogate is
        refused by the store's serializer, naming it)."""
        problem = value_problem(value, where="input", surrogates=False)
        if problem:
            raise InputValidationError(f"the input of workflow {self.name!r}: {problem}")
        return self.validate_input(value)

    def validate_input(self, value: Any) -> Any:
        """Check the run input against the declared input type, else against the types of the step
        arguments that take the input; returns the (coerced) value. A run with an input its first
        steps cannot take is refused before it starts (nothing is recorded)."""
        if self._input_validator is not None:
            return self._input_validator(value, f"input of workflow {self.name!r}")
        for s in self.steps.values():
            for b in s.params:
                if b.source == INPUT and b.validator is not None:
                    try:
                        b.validator(value, f"step {s.id!r} argument {b.name!r}")
                    except InputValidationError as exc:
                        hint = " (no input was given: pass one, e.g. podium run ... --input JSON)" if value is None else ""
                        raise InputValidationError(f"the input of workflow {self.name!r} does not fit {exc}{hint}") from None
        return value

    def freeze(self) -> Workflow:
        """Check the whole graph and fix it for running. Raises one :class:`DefinitionError` listing
        every problem. Called on first use; call it yourself to check a workflow early."""
        if self._frozen:
            return self
        problems: list[str] = []
        if not self.steps:
            problems.append(f"workflow {self.name!r} has no steps; add one with @wf.step")
        ids = set(self.steps)
        for s in self.steps.values():
            data, order = set(), set(s.needs)
            for b in s.params:
                if b.source == CTX:
                    continue
                if b.source == INPUT:
                    continue
                if b.source in ids and b.source != s.id:
                    data.add(b.source)
                elif b.has_default:
                    b.source = "default"
                else:
                    problems.append(_unknown(s, f"parameter {b.name!r}", b.name, ids))
            for label, params in (("condition", s.when_params), ("loop condition", s.loop_params)):
                for b in params:
                    if b.source == INPUT:
                        continue
                    if b.source in ids:
                        if label == "condition":
                            order.add(b.source)
                    elif b.has_default:
                        b.source = "default"
                    else:
                        problems.append(_unknown(s, f"{label} parameter {b.name!r}", b.name, ids))
            for n in s.needs:
                if n not in ids:
                    problems.append(_unknown(s, "needs", n, ids))
            if s.map is not None:
                if s.map != INPUT and s.map not in ids:
                    problems.append(_unknown(s, "map", s.map, ids))
                elif s.map not in {b.name for b in s.params}:
                    problems.append(
                        f"step {s.id!r} ({s.source_line}): map={s.map!r} but the function has no parameter "
                        f"named {s.map!r} to receive each item; add one"
                    )
            if s.loop is not None and s.loop.to not in ids:
                problems.append(_unknown(s, "loop target", s.loop.to, ids))
            s.takes_ctx = any(b.source == CTX for b in s.params)
            s.fast = (
                s.is_async
                and s.child is None
                and s.timeout is None
                and s.kind is None
                and s.output_validator is None
                and s.escalate is None
                and s.gate is None
                and s.executor is None
                and not s.takes_ctx
            )
            s.data_deps = frozenset(data)
            s.deps = tuple(sorted((data | order) & ids - {s.id}))
        if not problems:
            problems.extend(self._check_graph())
        if isinstance(self.output, str) and self.output not in ids:
            problems.append(
                f"workflow {self.name!r}: output={self.output!r} is not a step; steps: {', '.join(sorted(ids))}"
            )
        elif callable(self.output):
            self.output_params = _bindings(self.output, allow_ctx=False)
            for b in self.output_params:
                if b.source != INPUT and b.source not in ids:
                    problems.append(
                        f"workflow {self.name!r}: output function parameter {b.name!r} is not a step"
                    )
        if problems:
            head = f"workflow {self.name!r} is not valid ({len(problems)} problem{'s' if len(problems) > 1 else ''}):"
            raise DefinitionError(head + "\n  - " + "\n  - ".join(problems), problems)
        self._frozen = True
        return self

    def _check_graph(self) -> list[str]:
        steps = self.steps
        # Loop bodies: steps reachable from the loop target that reach the looping step.
        for s in steps.values():
            if s.loop is None:
                continue
            body = _between(steps, s.loop.to, s.id)
            if body is None:
                return [
                    f"step {s.id!r} ({s.source_line}): loop to {s.loop.to!r} must route back to the step "
                    f"itself or to a step it depends on (directly or not)"
                ]
            self.loop_bodies[s.id] = body
        # Steps outside a loop that use a body step wait for the loop to end.
        for loop_step, body in self.loop_bodies.items():
            inside = set(body)
            for s in steps.values():
                if s.id not in inside and inside & set(s.deps) and loop_step not in s.deps:
                    s.deps = (*s.deps, loop_step)
        # Cycle check and a stable topological order (Kahn).
        indeg = {sid: len(s.deps) for sid, s in steps.items()}
        dependents: dict[str, list[str]] = {sid: [] for sid in steps}
        for s in steps.values():
            for d in s.deps:
                dependents[d].append(s.id)
        ready = [sid for sid in steps if indeg[sid] == 0]
        order = []
        while ready:
            sid = ready.pop(0)
            order.append(sid)
            for nxt in dependents[sid]:
                indeg[nxt] -= 1
                if indeg[nxt] == 0:
                    ready.append(nxt)
        if len(order) < len(steps):
            stuck = sorted(sid for sid in steps if indeg[sid] > 0)
            return [
                f"steps {', '.join(stuck)} depend on each other in a cycle; a step may route back to an "
                f"earlier one only through loop=Loop(to=..., while_=..., max_iterations=...)"
            ]
        for s in steps.values():
            s.dependents = tuple(dependents[s.id])
        for loop_step, body in self.loop_bodies.items():
            inside = set(body)
            self.loop_restarts[loop_step] = tuple((b, tuple(d for d in steps[b].deps if d in inside)) for b in body)
        self.order = tuple(order)
        self.roots = tuple(sid for sid in order if not steps[sid].deps)
        return []

    @property
    def sinks(self) -> list[str]:
        """Steps no other step waits for."""
        self.freeze()
        return [sid for sid in self.order if not self.steps[sid].dependents]


def _between(steps: dict[str, StepDef], start: str, end: str) -> tuple[str, ...] | None:
    """Steps on some path from ``start`` to ``end`` (both included), or None if there is no path."""
    if start == end:
        return (end,)
    ancestors: set[str] = set()
    stack = [end]
    while stack:
        for d in steps[stack.pop()].deps:
            if d not in ancestors:
                ancestors.add(d)
                stack.append(d)
    if start not in ancestors:
        return None
    users: dict[str, list[str]] = {}
    for s in steps.values():
        for d in s.deps:
            users.setdefault(d, []).append(s.id)
    body, stack = {start}, [start]
    while stack:
        for u in users.get(stack.pop(), ()):
            if u not in body and (u in ancestors or u == end):
                body.add(u)
                stack.append(u)
    return tuple(sid for sid in steps if sid in body)


def _unknown(s: StepDef, what: str, name: str, ids: set[str]) -> str:
    # Only a parameter may also be input/ctx or take a default; needs, map and a loop's target name steps.
    param = "parameter" in what
    others = (ids | _RESERVED) if param else ids | ({INPUT} if what == "map" else set())
    close = difflib.get_close_matches(name, sorted(others), n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"steps are: {', '.join(sorted(ids)) or '(none)'}"
    nor = " nor 'input'/'ctx'" if param else " nor 'input'" if what == "map" else ""
    tail = " (or give the parameter a default)" if param else ""
    return f"step {s.id!r} ({s.source_line}): {what} names {name!r}, which is not a step of this workflow{nor}; {hint}{tail}"


def _where(fn: Callable[..., Any]) -> str:
    code = getattr(fn, "__code__", None)
    if code is None:
        return repr(fn)
    return f"{code.co_filename}:{code.co_firstlineno}"
