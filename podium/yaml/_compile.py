"""From a checked plan to a :class:`~podium.Workflow`: the same object the Python API builds.

Each step becomes a generated function whose signature declares what it takes, by name, exactly as a
hand-written step would: ``input``, ``ctx`` when needed, and one parameter per step whose output it
uses (with a default when the file copes with it missing). The engine then schedules, records,
retries, resumes and forks it like any Python step. The function's code object carries the file
name and the step's line, so engine messages and tracebacks point into the workflow file.

``on_error: <fallback>`` compiles to engine features only: the step gets ``on_error="continue"``
(so its failure is recorded, truthfully, as a failed step), the fallback step gets a condition that
holds when the step failed (it did not complete although it would have run), and every use of the
step's output takes the fallback's output when the step has none.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..engine.workflow import Escalate, Loop, Workflow
from ..errors import InputValidationError, NonRetryableError
from ._expr import EvaluationError, Expr, evaluate_tree
from ._plan import Plan, StepPlan
from ._registry import SUBWORKFLOW
from ._sandbox import missing
from ._schema import schema_types, validate
from ._source import value_span

log = logging.getLogger("podium.yaml")

KW = inspect.Parameter.KEYWORD_ONLY
_EMPTY = inspect.Parameter.empty


class _Missing:
    """Default of a parameter whose step may not have completed."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


class _Steps:
    """``steps`` in templates: ``steps.<id>.output`` for the steps this one depends on."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: Any) -> Any:
        if name in self._values:
            return {"output": self._values[name]}
        return missing(
            f"steps.{name} has no output: step {name!r} was skipped or failed (use | default(...) to cope)"
        )


class _Previous:
    """``previous`` in templates: outputs of the previous loop iteration."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: Any) -> Any:
        value = self._ctx.previous(name, MISSING) if self._ctx is not None else MISSING
        if value is MISSING:
            return missing(f"previous.{name} has no output: this is the first iteration (use | default(...))")
        return {"output": value}


@dataclass(kw_only=True)
class _Parts:
    """A step's generated pieces, before it is added to the workflow."""

    plan: StepPlan
    params: list[inspect.Parameter] = field(default_factory=list)
    required: list[str] = field(default_factory=list)
    merged: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Step id -> (the step, its fallback): the output is the step's, else the fallback's."""
    when_params: list[str] = field(default_factory=list)
    when: Callable[..., Any] | None = None


def _sources(plan: Plan, sid: str, user: str) -> tuple[str, ...]:
    fb = plan.steps[sid].fallback if sid in plan.steps else None
    return (sid, fb) if fb and fb != user else (sid,)


def _value(kw: dict[str, Any], sources: tuple[str, ...]) -> Any:
    for s in sources:
        v = kw.get(s, MISSING)
        if v is not MISSING:
            return v
    return MISSING


class Compiler:
    def __init__(self, plan: Plan, *, file: str, code_file: str) -> None:
        self.plan = plan
        self.file = file
        self.code_file = code_file
        self.parts: dict[str, _Parts] = {}

    def where(self, node: Any, key: Any) -> str:
        span = value_span(node, key)
        return f"{self.file}:{span.line}:{span.column}"

    # -- the workflow ---------------------------------------------------------------------------

    def build(self) -> Workflow:
        spec = self.plan.spec
        wf = Workflow(
            spec.name,
            version=spec.version,
            input=_input_type(spec.input_schema, self.file) if spec.input_schema is not None else None,
            output=self.output(),
            timeout=spec.timeout,
            description=spec.description,
        )
        for sid, p in self.plan.steps.items():
            self.parts[sid] = self.prepare(p)
        for parts in self.parts.values():
            if parts.plan.fallback_of is not None:
                self.fallback_condition(parts)
        for sid, p in self.plan.steps.items():
            if p.items_step is not None:
                self.add_items_step(wf, p)
            self.add_step(wf, p, self.parts[sid])
        wf.triggers = list(spec.triggers)  # type: ignore[attr-defined]
        return wf.freeze()

    def output(self) -> Any:
        plan = self.plan
        if not plan.spec.has_outputs:
            return None
        tree = plan.outputs
        if (
            isinstance(tree, Expr)
            and tree.path is not None
            and tree.path.root == "steps"
            and len(tree.path.path) == 2
        ):
            sid = str(tree.path.path[0])
            if plan.steps[sid].fallback is None:
                return sid  # exactly what output="step" means in the Python API
        sources = {sid: _sources(plan, sid, "") for sid in plan.output_refs}
        params = [inspect.Parameter("input", KW)]
        params += [inspect.Parameter(s, KW, default=MISSING) for srcs in sources.values() for s in srcs]
        where = self.where(plan.spec.node, "outputs")

        def outputs(kw: dict[str, Any]) -> Any:
            values = {sid: _value(kw, srcs) for sid, srcs in sources.items()}
            variables = {
                "input": kw.get("input"),
                "steps": _Steps({k: v for k, v in values.items() if v is not MISSING}),
            }
            try:
                return evaluate_tree(tree, variables)
            except EvaluationError as exc:
                # The engine has no way to fail a run from its output function yet: say it loudly.
                log.error("workflow %r: outputs (%s) could not be computed: %s", plan.spec.name, where, exc)
                return None

        return _entry(
            outputs,
            False,
            name="outputs",
            params=params,
            doc="the workflow's outputs",
            file=self.code_file,
            line=value_span(plan.spec.node, "outputs").line,
        )

    # -- steps ----------------------------------------------------------------------------------

    def prepare(self, p: StepPlan) -> _Parts:
        parts = _Parts(plan=p)
        params = [inspect.Parameter("input", KW)]
        if p.uses_ctx or p.spec.executor:  # a step on an executor sends its call through ctx.call
            params.append(inspect.Parameter("ctx", KW))
        taken = {"input", "ctx"}
        presence: list[tuple[str, ...]] = []
        for sid, required in p.refs.items():
            srcs = _sources(self.plan, sid, p.id)
            parts.merged[sid] = srcs
            if len(srcs) == 1 and required:
                params.append(inspect.Parameter(sid, KW))
                parts.required.append(sid)
            else:
                params += [inspect.Parameter(s, KW, default=MISSING) for s in srcs if s not in taken]
                if required:
                    presence.append(srcs)
            taken.update(srcs)
        for sid in p.while_refs - {p.id}:
            srcs = _sources(self.plan, sid, p.id)
            parts.merged.setdefault(sid, srcs)
            params += [inspect.Parameter(s, KW, default=MISSING) for s in srcs if s not in taken]
            taken.update(srcs)
        item = p.map_from or p.items_step
        if item is not None and item not in taken:
            params.append(inspect.Parameter(item, KW))
            parts.required.append(item)
        parts.params = params
        when_ids = sorted(
            {s for srcs in presence for s in srcs}
            | {s for r in p.if_refs for s in _sources(self.plan, r, p.id)}
        )
        parts.when_params = when_ids
        if p.condition is not None or presence:
            parts.when = self.condition(p, presence, when_ids)
        return parts

    def condition(
        self, p: StepPlan, presence: list[tuple[str, ...]], when_ids: list[str]
    ) -> Callable[..., Any]:
        cond = p.condition
        merged = {r: _sources(self.plan, r, p.id) for r in p.if_refs}
        label = f"step {p.id!r}"

        def when(kw: dict[str, Any]) -> bool:
            for srcs in presence:
                if _value(kw, srcs) is MISSING:
                    return False
            if cond is None or cond is True:
                return True
            if cond is False:
                return False
            values = {r: _value(kw, srcs) for r, srcs in merged.items()}
            return _truth(cond, kw.get("input"), values, label)

        params = [inspect.Parameter("input", KW)] + [
            inspect.Parameter(s, KW, default=MISSING) for s in when_ids
        ]
        return _entry(
            when,
            False,
            name=f"{p.id}_if",
            params=params,
            doc="",
            file=self.code_file,
            line=value_span(p.spec.node, "if").line,
        )

    def fallback_condition(self, parts: _Parts) -> None:
        """The fallback runs when its step did not complete although it would have run: it failed."""
        fb = parts.plan
        primary_id = fb.fallback_of
        assert primary_id is not None
        primary = self.parts[primary_id]
        own = parts.when
        p_required = [s for s in primary.required]
        p_when = primary.when
        p_when_params = primary.when_params
        names = sorted({primary_id, *p_required, *p_when_params, *parts.when_params} - {"input", "ctx"})

        def when(kw: dict[str, Any]) -> bool:
            if kw.get(primary_id, MISSING) is not MISSING:
                return False
            if any(kw.get(r, MISSING) is MISSING for r in p_required):
                return False  # the step was skipped (an input of it did not complete)
            if p_when is not None and not p_when(
                input=kw.get("input"), **{k: kw.get(k, MISSING) for k in p_when_params}
            ):
                return False  # the step was skipped (its condition is false)
            if own is not None:
                return bool(own(input=kw.get("input"), **{k: kw.get(k, MISSING) for k in parts.when_params}))
            return True

        params = [inspect.Parameter("input", KW)] + [inspect.Parameter(s, KW, default=MISSING) for s in names]
        parts.when = _entry(
            when,
            False,
            name=f"{fb.id}_fallback_if",
            params=params,
            doc="",
            file=self.code_file,
            line=fb.spec.span.line,
        )

    def add_items_step(self, wf: Workflow, p: StepPlan) -> None:
        hid = p.items_step
        assert hid is not None
        items = p.items
        params = [inspect.Parameter("input", KW)]
        presence: list[tuple[str, ...]] = []
        taken = {"input"}
        merged = {}
        for sid, required in p.items_refs.items():
            srcs = _sources(self.plan, sid, p.id)
            merged[sid] = srcs
            if len(srcs) == 1 and required:
                params.append(inspect.Parameter(sid, KW))
            else:
                params += [inspect.Parameter(s, KW, default=MISSING) for s in srcs if s not in taken]
                if required:
                    presence.append(srcs)
            taken.update(srcs)
        label = f"step {p.id!r}"

        async def compute(kw: dict[str, Any]) -> list[Any]:
            values = {sid: _value(kw, srcs) for sid, srcs in merged.items()}
            variables = {
                "input": kw.get("input"),
                "steps": _Steps({k: v for k, v in values.items() if v is not MISSING}),
            }
            try:
                value = evaluate_tree(items, variables)
            except EvaluationError as exc:
                raise NonRetryableError(f"{label}: {exc}") from None
            if not isinstance(value, list):
                raise NonRetryableError(f"{label}: for_each gave {type(value).__name__}, not a list")
            return value

        when = None
        if presence:
            ids = sorted({s for srcs in presence for s in srcs})

            def present(kw: dict[str, Any]) -> bool:
                return all(_value(kw, srcs) is not MISSING for srcs in presence)

            when = _entry(
                present,
                False,
                name=f"{hid}_if",
                params=[inspect.Parameter(s, KW, default=MISSING) for s in ids],
                doc="",
                file=self.code_file,
                line=p.spec.span.line,
            )
        fn = _entry(
            compute,
            True,
            name=hid,
            params=params,
            doc=f"the items that {p.id!r} fans out over",
            file=self.code_file,
            line=value_span(p.spec.node, "for_each").line,
        )
        fn.__podium_yaml__ = {"uses": f"the list {p.id} fans out over"}  # type: ignore[attr-defined]
        wf.step(fn, id=hid, when=when, needs=(), on_error="fail")

    def add_step(self, wf: Workflow, p: StepPlan, parts: _Parts) -> None:
        s = p.spec
        run, is_async, returns = self.body(p, parts)
        fn = _entry(
            run,
            is_async,
            name=p.id,
            params=parts.params,
            doc=s.description or f"uses {s.uses}",
            file=self.code_file,
            line=s.span.line,
            returns=returns,
        )
        fn.__podium_yaml__ = {"uses": s.uses, "fallback": p.fallback, "fallback_of": p.fallback_of}  # type: ignore[attr-defined]
        needs: list[str] = []
        for n in p.needs:
            needs.extend(_sources(self.plan, n, p.id))
        loop = None
        if s.loop is not None:
            loop = Loop(to=s.loop.to, while_=self.loop_condition(p), max_iterations=s.loop.max_iterations)
        wf.step(
            fn,
            id=p.id,
            needs=tuple(dict.fromkeys(needs)),
            when=parts.when,
            map=p.map_from or p.items_step,
            max_parallel=s.max_parallel,
            retry=s.retry,
            timeout=s.timeout,
            kind=s.concurrency or (p.kind.concurrency if p.kind is not None else None),
            loop=loop,
            on_error="continue" if p.fallback is not None else s.on_error,
            labels=s.labels,
            escalate=Escalate(**s.escalate) if s.escalate else None,
            gate=s.gate,
            executor=s.executor,
        )

    def loop_condition(self, p: StepPlan) -> Callable[..., Any]:
        cond = p.while_
        srcs = {r: _sources(self.plan, r, p.id) if r != p.id else (r,) for r in p.while_refs}
        ids = sorted({s for v in srcs.values() for s in v})
        label = f"step {p.id!r}"

        def while_(kw: dict[str, Any]) -> bool:
            if isinstance(cond, bool) or cond is None:
                return bool(cond)
            values = {r: _value(kw, v) for r, v in srcs.items()}
            try:
                return _truth(cond, kw.get("input"), values, label)
            except Exception as exc:  # checked by the step itself first; this only guards replays
                log.error("%s could not be evaluated: %s; the loop ends", label, exc)
                return False

        params = [inspect.Parameter("input", KW)] + [inspect.Parameter(s, KW, default=MISSING) for s in ids]
        assert p.spec.loop is not None
        return _entry(
            while_,
            False,
            name=f"{p.id}_while",
            params=params,
            doc="",
            file=self.code_file,
            line=p.spec.loop.node.span.line,
        )

    def body(self, p: StepPlan, parts: _Parts) -> tuple[Callable[..., Any], bool, Any]:
        """The step's work, as ``impl(kwargs)``; whether it is async; its return annotation."""
        s = p.spec
        merged = parts.merged
        item_param = p.map_from or p.items_step
        args_tree = p.args
        label = f"step {p.id!r}"
        check_loop = self.loop_check(p)

        def variables(kw: dict[str, Any]) -> dict[str, Any]:
            ctx = kw.get("ctx")
            values = {sid: _value(kw, srcs) for sid, srcs in merged.items()}
            out: dict[str, Any] = {
                "input": kw.get("input"),
                "steps": _Steps({k: v for k, v in values.items() if v is not MISSING}),
            }
            if ctx is not None:
                out["previous"] = _Previous(ctx)
                out["run"] = {"id": ctx.run_id, "workflow": ctx.workflow, "version": ctx.workflow_version}
                out["index"] = ctx.index
            else:
                out["previous"] = _Previous(None)
            if item_param is not None:
                out["item"] = kw.get(item_param)
            return out

        def render(v: dict[str, Any]) -> dict[str, Any]:
            try:
                return dict(evaluate_tree(args_tree, v)) if args_tree else {}
            except EvaluationError as exc:
                raise NonRetryableError(f"{label}: {exc}") from None

        if p.kind is not None and p.kind.name == SUBWORKFLOW:
            child = p.child
            child_tree = p.child_input
            has_input = p.has_child_input

            async def subworkflow(kw: dict[str, Any]) -> Any:
                v = variables(kw)
                ctx = kw["ctx"]
                if has_input:
                    try:
                        child_input = evaluate_tree(child_tree, v)
                    except EvaluationError as exc:
                        raise NonRetryableError(f"{label}: {exc}") from None
                else:
                    child_input = ctx.input
                out = await ctx.run_workflow(child, child_input, name="child")
                check_loop(v, out)
                return out

            return subworkflow, True, _EMPTY

        if p.kind is not None:
            kind = p.kind
            schema = kind.args
            takes_ctx = kind.takes_ctx

            def prepare_kind(kw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
                v = variables(kw)
                args, errors = validate(schema, render(v), "with")
                if errors:
                    raise InputValidationError(f"step {p.id!r} ({s.uses}): {'; '.join(errors)}")
                if takes_ctx:
                    args["ctx"] = kw.get("ctx")
                return v, args

            if s.executor is not None and not takes_ctx:
                return self.offload(prepare_kind, kind.fn, s.executor, check_loop), True, _EMPTY
            if kind.is_async:

                async def run_kind_async(kw: dict[str, Any]) -> Any:
                    v, args = prepare_kind(kw)
                    out = await kind.fn(**args)
                    check_loop(v, out)
                    return out

                return run_kind_async, True, _EMPTY

            def run_kind(kw: dict[str, Any]) -> Any:
                v, args = prepare_kind(kw)
                out = kind.fn(**args)
                check_loop(v, out)
                return out

            return run_kind, False, _EMPTY

        fn = p.python
        assert fn is not None
        implicit = p.implicit

        def prepare_python(kw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
            v = variables(kw)
            args = render(v)
            for name, source in implicit.items():
                value = kw.get("input") if source == "input" else _value(kw, merged.get(source, (source,)))
                if value is not MISSING:
                    args[name] = value
            for name in list(args):
                if name in fn.params:
                    try:
                        args[name] = fn.coerce(name, args[name])
                    except ValueError as exc:
                        raise InputValidationError(f"step {p.id!r} argument {name!r}: {exc}") from None
            if fn.takes_ctx:
                args["ctx"] = kw.get("ctx")
            return v, args

        returns = fn.hints.get("return", _EMPTY)
        if s.executor is not None and not fn.takes_ctx:
            return self.offload(prepare_python, fn.fn, s.executor, check_loop), True, returns
        if fn.is_async:

            async def run_python_async(kw: dict[str, Any]) -> Any:
                v, args = prepare_python(kw)
                out = await fn.fn(**args)
                check_loop(v, out)
                return out

            return run_python_async, True, returns

        def run_python(kw: dict[str, Any]) -> Any:
            v, args = prepare_python(kw)
            out = fn.fn(**args)
            check_loop(v, out)
            return out

        return run_python, False, returns

    @staticmethod
    def offload(prepare: Callable[..., Any], target: Callable[..., Any], executor: str, check_loop: Any) -> Any:
        """The step renders its arguments here and sends only the call, a durable sub-step, to the
        executor (Ray): templates and the compiled step stay in the engine."""

        async def run_elsewhere(kw: dict[str, Any]) -> Any:
            v, args = prepare(kw)
            out = await kw["ctx"].call(functools.partial(target, **args), executor=executor, name=executor)
            check_loop(v, out)
            return out

        return run_elsewhere

    def loop_check(self, p: StepPlan) -> Callable[[dict[str, Any], Any], None]:
        """Evaluate the loop condition inside the step, so that a condition that cannot be evaluated
        fails this step (recorded, with its error) rather than the engine."""
        cond = p.while_
        if not isinstance(cond, Expr):
            return lambda v, out: None
        sid = p.id
        assert p.spec.loop is not None
        label = f"step {sid!r}"

        def check(v: dict[str, Any], out: Any) -> None:
            values = dict(v["steps"]._values)
            values[sid] = out
            try:
                cond.evaluate({"input": v["input"], "steps": _Steps(values)})
            except EvaluationError as exc:
                raise NonRetryableError(f"{label}: {exc}") from None

        return check


def _truth(cond: Expr, input: Any, values: dict[str, Any], label: str) -> bool:
    variables = {"input": input, "steps": _Steps({k: v for k, v in values.items() if v is not MISSING})}
    try:
        return bool(cond.evaluate(variables))
    except EvaluationError as exc:
        raise NonRetryableError(f"{label}: {exc}") from None


def _sync_entry(impl: Callable[[dict[str, Any]], Any]) -> Callable[..., Any]:
    def step(**kwargs: Any) -> Any:
        return impl(kwargs)

    return step


def _async_entry(impl: Callable[[dict[str, Any]], Any]) -> Callable[..., Any]:
    async def step(**kwargs: Any) -> Any:
        return await impl(kwargs)

    return step


def _entry(
    impl: Callable[[dict[str, Any]], Any],
    is_async: bool,
    *,
    name: str,
    params: list[inspect.Parameter],
    doc: str,
    file: str,
    line: int,
    returns: Any = _EMPTY,
) -> Callable[..., Any]:
    """A function the engine can inspect like a hand-written step: its signature names what it takes,
    and its code object names the workflow file and line (for messages and tracebacks)."""
    fn = (_async_entry if is_async else _sync_entry)(impl)
    fn.__code__ = fn.__code__.replace(
        co_filename=file, co_firstlineno=max(1, line), co_name=name, co_qualname=name
    )
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    fn.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    fn.__annotations__ = {} if returns is _EMPTY else {"return": returns}
    return fn


def _input_type(schema: dict[str, Any], file: str) -> type:
    """A type pydantic can validate with, checking the run input against the file's input schema."""

    # A run started without an input (``podium run FILE`` with no --input, an API call without one)
    # of a file whose input is an object: its fields' defaults apply and a missing field is named,
    # instead of "expected object, got null".
    no_input = schema_types(schema) == frozenset({"object"})

    def check(value: Any) -> Any:
        if value is None and no_input:
            value = {}
        out, errors = validate(schema, value, "input")
        if errors:
            raise InputValidationError("; ".join(errors))
        return out

    def core_schema(cls: type, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema as cs

        return cs.no_info_plain_validator_function(check)

    name = f"the input schema of {os.path.basename(file)}"
    return type(name, (), {"__get_pydantic_core_schema__": classmethod(core_schema), "schema": schema})
