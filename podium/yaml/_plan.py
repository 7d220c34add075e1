"""What a workflow file means: kinds resolved, templates compiled, references, arguments and types
checked, and the step graph built (with its cycles found), all before anything is generated."""

from __future__ import annotations

import difflib
import inspect
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._expr import (
    Expr,
    ExpressionError,
    Ref,
    compile_condition,
    compile_template,
    compile_tree,
    has_template,
    json_type,
    step_refs,
    tree_exprs,
)
from ._python import PythonFunction, Refused, looks_like_ref, resolve_function
from ._registry import SUBWORKFLOW, StepType
from ._schema import compatible, lookup, schema_types, validate
from ._source import Span, YMap, key_span, offset_span, value_span
from ._spec import Loader, Reporter, StepSpec, WorkflowSpec

if TYPE_CHECKING:
    from ..engine.workflow import Workflow

STEP_NAMES = frozenset({"input", "steps", "run", "previous"})
ITEM_NAMES = frozenset({"item", "index"})
CONDITION_NAMES = frozenset({"input", "steps"})
RUN_FIELDS = ("id", "workflow", "version")
_EMPTY = inspect.Parameter.empty


@dataclass(kw_only=True)
class StepPlan:
    """One step, understood."""

    spec: StepSpec
    kind: StepType | None = None
    python: PythonFunction | None = None
    child: Workflow | None = None
    child_input: Any = None
    has_child_input: bool = False
    args: dict[str, Any] = field(default_factory=dict)
    """``with:`` compiled: template strings replaced by :class:`Expr`."""
    implicit: dict[str, str] = field(default_factory=dict)
    """Python parameters bound by name: parameter -> ``input`` or a step id."""
    condition: Expr | bool | None = None
    items: Expr | list[Any] | None = None
    map_from: str | None = None
    """for_each over exactly ``steps.X.output``: mapped directly over X (else a generated step)."""
    while_: Expr | bool | None = None
    refs: dict[str, bool] = field(default_factory=dict)
    """Steps whose output this step uses (``with``, ``if``, bound parameters): id -> required."""
    if_refs: set[str] = field(default_factory=set)
    items_refs: dict[str, bool] = field(default_factory=dict)
    while_refs: set[str] = field(default_factory=set)
    needs: list[str] = field(default_factory=list)
    uses_ctx: bool = False
    fallback: str | None = None
    fallback_of: str | None = None
    output_schema: Any = None

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def items_step(self) -> str | None:
        """Id of the generated step that computes the for_each list, if one is needed."""
        return f"{self.id}__items" if self.items is not None and self.map_from is None else None


@dataclass(kw_only=True)
class Plan:
    spec: WorkflowSpec
    steps: dict[str, StepPlan]
    outputs: Any = None
    output_refs: dict[str, bool] = field(default_factory=dict)
    deps: dict[str, set[str]] = field(default_factory=dict)


class Planner:
    def __init__(self, spec: WorkflowSpec, rep: Reporter, loader: Loader, base_dir: str) -> None:
        self.spec = spec
        self.rep = rep
        self.loader = loader
        self.base_dir = base_dir
        self.ids = [s.id for s in spec.steps]
        self.plans: dict[str, StepPlan] = {s.id: StepPlan(spec=s) for s in spec.steps}

    # -- reporting ------------------------------------------------------------------------------

    def problem(
        self, span: Span, message: str, code: str, step: str | None = None, hint: str | None = None
    ) -> None:
        self.rep.at(span, message, code, step=step, hint=hint)

    def did_you_mean(self, name: str, choices: list[str], what: str) -> str:
        close = difflib.get_close_matches(name, choices, n=1)
        if close:
            return f"did you mean {close[0]!r}?"
        return f"{what}: {', '.join(choices)}" if choices else f"there are no {what}"

    # -- the whole plan -------------------------------------------------------------------------

    def run(self) -> Plan:
        for p in self.plans.values():
            self.resolve_uses(p)
        for p in self.plans.values():
            self.output_schema(p)
        for p in self.plans.values():
            self.analyze(p)
        self.link_fallbacks()
        plan = Plan(spec=self.spec, steps=self.plans)
        if self.spec.has_outputs:
            plan.outputs = self.compile_value(
                self.spec.outputs,
                self.spec.node,
                ("outputs",),
                None,
                CONDITION_NAMES,
                plan.output_refs,
                "outputs",
            )
        plan.deps = self.graph()
        self.check_loops(plan.deps)
        return plan

    # -- uses -----------------------------------------------------------------------------------

    def resolve_uses(self, p: StepPlan) -> None:
        s = p.spec
        span = value_span(s.node, "uses")
        if not s.uses:  # missing or not text: said when the file was read
            return
        if looks_like_ref(s.uses):
            try:
                p.python = resolve_function(s.uses, base_dir=self.base_dir, modules=self.loader.modules)
            except Refused as exc:
                self.problem(span, f"cannot use {s.uses!r}: {exc.message}", "python", s.id, exc.hint)
            return
        kind = self.loader.registry.get(s.uses)
        if kind is None:
            names = self.loader.registry.names()
            hint = self.did_you_mean(s.uses, names, "known kinds")
            err = self.loader.registry.load_errors.get(s.uses)
            hint = f"the plug-in for {s.uses!r} failed to load: {err}" if err else f"{hint} (or name a Python function as package.module:function)"
            self.problem(span, f"unknown step kind {s.uses!r}", "unknown-kind", s.id, hint)
            return
        p.kind = kind

    def output_schema(self, p: StepPlan) -> None:
        schema: Any = None
        if p.kind is not None and p.kind.name == "set" and isinstance(p.spec.with_, dict):
            props = {}
            for k, v in p.spec.with_.items():
                t = None if isinstance(v, str) and has_template(v) else json_type(v)
                props[str(k)] = {"type": t} if t else {}
            schema = {"type": "object", "properties": props, "additionalProperties": False}
        elif p.kind is not None:
            schema = p.kind.output
        elif p.python is not None and p.python.hints.get("return", _EMPTY) is not _EMPTY:
            try:
                from pydantic import TypeAdapter

                schema = TypeAdapter(p.python.hints["return"]).json_schema()
            except Exception:
                schema = None
        if schema is not None and p.spec.for_each is not None:
            schema = {"type": "array", "items": schema}
        p.output_schema = schema if p.spec.gate is None else None  # a gate's report adds a field

    # -- one step -------------------------------------------------------------------------------

    def analyze(self, p: StepPlan) -> None:
        s = p.spec
        sid = s.id
        names = STEP_NAMES | (ITEM_NAMES if s.for_each is not None else frozenset())
        for nid, span in s.needs:
            if nid == sid:
                self.problem(span, f"step {sid!r} needs itself", "cycle", sid)
            elif nid not in self.plans:
                self.problem(
                    span,
                    f"'needs' names {nid!r}, which is not a step of this workflow",
                    "unknown-step",
                    sid,
                    self.did_you_mean(nid, self.ids, "steps"),
                )
            else:
                p.needs.append(nid)
        if s.if_ is not None:
            p.condition = self.compile_condition(s.if_, s.node, "if", sid, p.refs, "if")
            p.if_refs = set(step_refs(p.condition))
        if s.for_each is not None:
            self.analyze_items(p)
        if s.loop is not None:
            if s.for_each is not None:
                self.problem(
                    key_span(s.node, "loop"),
                    "a step cannot both fan out (for_each) and loop",
                    "loop",
                    sid,
                    "put the loop on a step after the for_each step",
                )
            refs: dict[str, bool] = {}
            p.while_ = self.compile_condition(
                s.loop.while_, s.loop.node, "while", sid, refs, "loop.while", allow_self=True
            )
            p.while_refs = set(refs)
        if p.kind is not None and p.kind.name == SUBWORKFLOW:
            self.analyze_subworkflow(p, names)
        else:  # an unknown kind or function (said already) still has its templates checked
            if s.with_ is not None:
                p.args = self.compile_value(s.with_, s.node, ("with",), sid, names, p.refs, "with")
            if p.kind is not None:
                self.check_kind_args(p)
                self.check_capabilities(p)
            elif p.python is not None:
                self.check_python_args(p)
        p.uses_ctx = (
            (p.python is not None and p.python.takes_ctx)
            or (p.kind is not None and (p.kind.takes_ctx or p.kind.name == SUBWORKFLOW))
            or self.uses_context(p)
        )
        if s.on_error not in ("fail", "continue"):
            p.fallback = s.on_error

    def uses_context(self, p: StepPlan) -> bool:
        exprs = [e for _, e in tree_exprs(p.args)] + [e for _, e in tree_exprs(p.child_input)]
        return any(r.root in ("run", "previous", "index") for e in exprs for r in e.refs)

    def analyze_items(self, p: StepPlan) -> None:
        s = p.spec
        value = s.for_each
        span = value_span(s.node, "for_each")
        if isinstance(value, list):
            p.items = self.compile_value(
                value, s.node, ("for_each",), s.id, CONDITION_NAMES, p.items_refs, "for_each"
            )
            return
        assert isinstance(value, str)
        expr = self.compile_string(
            value, s.node, ("for_each",), s.id, CONDITION_NAMES, p.items_refs, "for_each"
        )
        if expr is None:
            return
        if not isinstance(expr, Expr) or not expr.native:
            self.problem(
                span,
                "'for_each' must give a list: write one {{ expression }} (or a YAML list)",
                "type-mismatch",
                s.id,
                "e.g. for_each: '{{ steps.search.output }}'",
            )
            return
        p.items = expr
        types = self.types_of(expr)
        if types is not None and not compatible(types, frozenset({"array"})):
            self.problem(
                span,
                f"'for_each' needs a list, but {expr.source.strip()} gives {' or '.join(sorted(types))}",
                "type-mismatch",
                s.id,
                self.type_hint(expr),
            )
        ref = expr.path
        if ref is not None and ref.root == "steps" and len(ref.path) == 2 and ref.path[1] == "output":
            p.map_from = str(ref.path[0])

    def analyze_subworkflow(self, p: StepPlan, names: frozenset[str]) -> None:
        s = p.spec
        w = s.with_
        if w is None or "workflow" not in w:
            self.problem(
                key_span(s.node, "with") if w is not None else value_span(s.node, "uses"),
                "subworkflow needs the argument 'workflow'",
                "missing-argument",
                s.id,
                "with: {workflow: other.yaml} (a path relative to this file) or MODULE:WORKFLOW",
            )
            return
        for k in w:
            if k not in ("workflow", "input"):
                self.problem(
                    key_span(w, k),
                    f"subworkflow has no argument {k!r}",
                    "unknown-argument",
                    s.id,
                    self.did_you_mean(str(k), ["input", "workflow"], "arguments"),
                )
        ref = w["workflow"]
        span = value_span(w, "workflow")
        if not isinstance(ref, str) or has_template(ref):
            self.problem(
                span,
                "the subworkflow must be named literally (a path or MODULE:WORKFLOW), not computed",
                "type-mismatch",
                s.id,
            )
            return
        if "input" in w:
            p.has_child_input = True
            p.child_input = self.compile_value(w["input"], w, ("input",), s.id, names, p.refs, "with.input")
        child, err, hint = self.loader.load_child(ref, self.base_dir)
        if child is None:
            self.problem(span, f"subworkflow {ref!r}: {err}", "subworkflow", s.id, hint)
        else:
            p.child = child

    # -- arguments ------------------------------------------------------------------------------

    def check_kind_args(self, p: StepPlan) -> None:
        assert p.kind is not None
        s = p.spec
        schema = p.kind.args
        w = s.with_ if s.with_ is not None else YMap(s.node.span)
        found = schema.get("properties")
        props: dict[str, Any] = dict(found) if isinstance(found, dict) else {}
        where = key_span(s.node, "with") if s.with_ is not None else value_span(s.node, "uses")
        for name in schema.get("required") or ():
            if name not in w:
                desc = (props.get(name) or {}).get("description")
                self.problem(
                    where,
                    f"{s.uses} needs the argument {name!r}",
                    "missing-argument",
                    s.id,
                    f"add it under with: ({desc})" if desc else "add it under with:",
                )
        extra = schema.get("additionalProperties", True)
        for name, value in w.items():
            if name not in props:
                if extra is False:
                    self.problem(
                        key_span(w, name),
                        f"{s.uses} has no argument {name!r}",
                        "unknown-argument",
                        s.id,
                        self.did_you_mean(str(name), sorted(props), "its arguments"),
                    )
                continue
            self.check_value_type(p, name, value, props[name], f"{s.uses} argument {name!r}")

    def check_capabilities(self, p: StepPlan) -> None:
        """What the step reaches (tools, servers, hosts, files) must be written in the file, not
        computed, and registered (see podium.governance.capabilities)."""
        from ._reach import capability_problems

        assert p.kind is not None
        for span, message, hint in capability_problems(p.spec, p.kind, self.loader, self.base_dir):
            self.problem(span, message, "capability", p.spec.id, hint)

    def check_value_type(self, p: StepPlan, name: Any, value: Any, schema: Any, label: str) -> None:
        w = p.spec.with_
        span = value_span(w, name)
        compiled = p.args.get(name) if isinstance(p.args, dict) else None
        if isinstance(compiled, Expr):
            want = schema_types(schema)
            have = self.types_of(compiled)
            if want is not None and have is not None and not compatible(have, want):
                self.problem(
                    span,
                    f"type mismatch: {label} expects {' or '.join(sorted(want))}, but "
                    f"{compiled.source.strip()} gives {' or '.join(sorted(have))}",
                    "type-mismatch",
                    p.id,
                    self.type_hint(compiled),
                )
            return
        if any(True for _ in tree_exprs(compiled)):
            return  # holds templates further in: checked when it runs
        _, errors = validate(schema, value, f"with.{name}")
        if errors:
            self.problem(
                span, f"type mismatch: {label}: {errors[0].split(': ', 1)[-1]}", "type-mismatch", p.id
            )

    def check_python_args(self, p: StepPlan) -> None:
        fn = p.python
        assert fn is not None
        s = p.spec
        w = s.with_ if s.with_ is not None else {}
        for name, value in w.items():
            if name not in fn.params:
                if not fn.var_keyword:
                    self.problem(
                        key_span(w, name),
                        f"{s.uses} has no parameter {name!r}",
                        "unknown-argument",
                        s.id,
                        self.did_you_mean(str(name), list(fn.params), "its parameters"),
                    )
                continue
            compiled = p.args.get(name)
            if isinstance(compiled, Expr):
                want = fn.json_types(name)
                have = self.types_of(compiled)
                if want is not None and have is not None and not compatible(have, want):
                    self.problem(
                        value_span(w, name),
                        f"type mismatch: parameter {name!r} of {s.uses} expects "
                        f"{' or '.join(sorted(want))}, but {compiled.source.strip()} gives {' or '.join(sorted(have))}",
                        "type-mismatch",
                        s.id,
                        self.type_hint(compiled),
                    )
            elif not any(True for _ in tree_exprs(compiled)):
                why = fn.check_literal(name, value)
                if why:
                    self.problem(
                        value_span(w, name),
                        f"type mismatch: parameter {name!r} of {s.uses}: {why}",
                        "type-mismatch",
                        s.id,
                    )
        for name, param in fn.params.items():
            if name in w:
                continue
            if name == "input":
                p.implicit[name] = "input"
            elif name in self.plans and name != s.id:
                p.implicit[name] = name
                required = param.default is _EMPTY
                p.refs[name] = p.refs.get(name, False) or required
            elif param.default is _EMPTY:
                where = key_span(s.node, "with") if s.with_ is not None else value_span(s.node, "uses")
                self.problem(
                    where,
                    f"{s.uses} needs the argument {name!r}",
                    "missing-argument",
                    s.id,
                    f"add it under with:, e.g. {name}: '{{{{ input.{name} }}}}'",
                )

    # -- templates ------------------------------------------------------------------------------

    def compile_value(
        self,
        value: Any,
        container: Any,
        path: tuple[Any, ...],
        sid: str | None,
        names: frozenset[str],
        refs: dict[str, bool],
        label: str,
    ) -> Any:
        root = container
        # The value's own container and key, for positions of nested strings.
        for part in path[:-1]:
            root = root[part]

        def one(text: str, sub: tuple[Any, ...]) -> Any:
            holder, key = root, path[-1]
            for part in sub:
                holder, key = holder[key], part
            where = ".".join([label, *map(str, sub)])
            return self.compile_string(text, holder, (key,), sid, names, refs, where, compiled=True)

        return compile_tree(root[path[-1]], one)

    def compile_string(
        self,
        text: str,
        container: Any,
        path: tuple[Any, ...],
        sid: str | None,
        names: frozenset[str],
        refs: dict[str, bool],
        label: str,
        compiled: bool = False,
    ) -> Any:
        span = value_span(container, path[-1])
        try:
            expr = compile_template(text, names)
        except ExpressionError as exc:
            self.expression_problem(exc, text, span, sid, label)
            return text
        self.check_refs(expr, text, span, sid, refs, label)
        self.locate(expr, span, label)
        return expr

    def compile_condition(
        self,
        value: str | bool,
        container: Any,
        key: str,
        sid: str,
        refs: dict[str, bool],
        label: str,
        allow_self: bool = False,
    ) -> Expr | bool | None:
        if isinstance(value, bool):
            return value
        span = value_span(container, key)
        try:
            expr = compile_condition(value, CONDITION_NAMES)
        except ExpressionError as exc:
            self.expression_problem(exc, value, span, sid, label)
            return None
        self.check_refs(expr, value, span, sid, refs, label, allow_self=allow_self)
        self.locate(expr, span, label)
        return expr

    def locate(self, expr: Expr, span: Span, label: str) -> None:
        expr.label = label
        expr.where = f"{self.rep.file}:{span.line}:{span.column}"

    def expression_problem(
        self, exc: ExpressionError, text: str, span: Span, sid: str | None, label: str
    ) -> None:
        if span.style in ("|", ">"):
            span = Span(span.line + exc.lineno, span.column, span.start, span.end, span.style)
        elif exc.near and exc.near in text:
            span = offset_span(span, self.rep.text, text, text.index(exc.near))
        self.problem(span, f"{label}: {exc.message}", exc.code, sid, exc.hint)

    def check_refs(
        self,
        expr: Expr,
        text: str,
        span: Span,
        sid: str | None,
        refs: dict[str, bool],
        label: str,
        allow_self: bool = False,
    ) -> None:
        for ref in expr.refs:
            at = self.ref_span(ref, text, span)
            if ref.root in ("steps", "previous"):
                self.check_step_ref(ref, at, sid, refs, label, allow_self)
            elif ref.root == "input":
                self.check_input_ref(ref, at, sid, label)
            elif ref.root == "run" and (not ref.path or ref.path[0] not in RUN_FIELDS):
                self.problem(
                    at,
                    f"{label}: {ref.text} is not known; run has {', '.join(RUN_FIELDS)}",
                    "unknown-reference",
                    sid,
                )

    def ref_span(self, ref: Ref, text: str, span: Span) -> Span:
        if span.style in ("|", ">"):
            return span
        first = ref.path[0] if ref.path else None
        pattern = re.escape(ref.root)
        if first is not None:
            pattern += r"\s*(\.\s*" + re.escape(str(first)) + r"|\[\s*['\"]?" + re.escape(str(first)) + r")"
        m = re.search(r"(?<![\w.])" + pattern, text)
        return offset_span(span, self.rep.text, text, m.start()) if m else span

    def check_step_ref(
        self, ref: Ref, at: Span, sid: str | None, refs: dict[str, bool], label: str, allow_self: bool
    ) -> None:
        if not ref.path or not isinstance(ref.path[0], str):
            self.problem(
                at,
                f"{label}: {ref.text} must name a step: {ref.root}.<step id>.output",
                "unknown-reference",
                sid,
            )
            return
        target = ref.path[0]
        if target not in self.plans:
            self.problem(
                at,
                f"{label}: unknown reference {ref.root}.{target}: there is no step {target!r}",
                "unknown-reference",
                sid,
                self.did_you_mean(target, self.ids, "steps"),
            )
            return
        if (len(ref.path) < 2 and not ref.guarded) or (len(ref.path) >= 2 and ref.path[1] != "output"):
            got = f" has no {ref.path[1]!r}" if len(ref.path) > 1 else " is not a value"
            self.problem(
                at,
                f"{label}: {ref.root}.{target}{got}",
                "unknown-reference",
                sid,
                f"use {ref.root}.{target}.output",
            )
            return
        if ref.root == "previous":
            return
        if target == sid and not allow_self:
            self.problem(
                at,
                f"{label}: step {sid!r} cannot use its own output",
                "cycle",
                sid,
                f"in a loop, previous.{sid}.output is its output in the previous iteration",
            )
            return
        plan = self.plans[target]
        schema = plan.output_schema
        if (
            len(ref.path) > 2
            and schema is not None
            and plan.fallback is None
            and plan.spec.on_error not in ("continue",)
        ):
            _, missing, fields = lookup(schema, tuple(ref.path[2:]))
            if missing is not None:
                self.problem(
                    at,
                    f"{label}: unknown reference {ref.text}: the output of {target!r} has no field {missing!r}",
                    "unknown-reference",
                    sid,
                    self.did_you_mean(missing, fields, "its fields"),
                )
        refs[target] = refs.get(target, False) or not ref.guarded

    def check_input_ref(self, ref: Ref, at: Span, sid: str | None, label: str) -> None:
        schema = self.spec.input_schema
        if schema is None or not ref.path:
            return
        _, missing, fields = lookup(schema, ref.path)
        if missing is not None:
            self.problem(
                at,
                f"{label}: unknown reference {ref.text}: the input has no field {missing!r}",
                "unknown-reference",
                sid,
                self.did_you_mean(missing, fields, "input fields"),
            )

    def types_of(self, expr: Expr) -> frozenset[str] | None:
        if expr.result_types is not None:
            return expr.result_types
        ref = expr.path
        if ref is None:
            return None
        if ref.root == "input" and self.spec.input_schema is not None:
            sub, _, _ = lookup(self.spec.input_schema, ref.path)
            return schema_types(sub) if sub is not None else None
        if ref.root == "steps" and len(ref.path) >= 2 and ref.path[0] in self.plans:
            plan = self.plans[str(ref.path[0])]
            if plan.fallback is not None or plan.output_schema is None:
                return None
            sub, _, _ = lookup(plan.output_schema, tuple(ref.path[2:]))
            return schema_types(sub) if sub is not None else None
        return None

    def type_hint(self, expr: Expr) -> str | None:
        ref = expr.path
        if ref is not None and ref.root == "input":
            return f"{ref.text} is declared in the workflow's input schema; convert with a filter (| int, | string...) if intended"
        if ref is not None and ref.root == "steps":
            return f"{ref.text} is what step {ref.path[0]!r} returns; convert with a filter (| int, | string...) if intended"
        return None

    # -- fallbacks, graph, loops ----------------------------------------------------------------

    def link_fallbacks(self) -> None:
        for p in self.plans.values():
            f = p.fallback
            if f is None:
                continue
            span = value_span(p.spec.node, "on_error")
            if f == p.id:
                self.problem(span, "a step cannot be its own fallback", "unknown-step", p.id)
            elif f not in self.plans:
                self.problem(
                    span,
                    f"on_error names {f!r}, which is neither fail, continue nor a step of this workflow",
                    "unknown-step",
                    p.id,
                    self.did_you_mean(f, ["fail", "continue", *self.ids], "choices"),
                )
            elif self.plans[f].fallback_of is not None:
                self.problem(
                    span,
                    f"step {f!r} is already the fallback of {self.plans[f].fallback_of!r}; a step can be the "
                    "fallback of one step only",
                    "unknown-step",
                    p.id,
                )
            elif self.plans[f].spec.on_error not in ("fail", "continue"):
                self.problem(
                    span,
                    f"the fallback step {f!r} has its own fallback; chains of fallbacks are not supported",
                    "unknown-step",
                    p.id,
                    f"give {f!r} on_error: fail or continue",
                )
            elif p.id in self.plans[f].refs or p.id in self.plans[f].items_refs:
                self.problem(
                    value_span(self.plans[f].spec.node, "uses"),
                    f"fallback step {f!r} uses steps.{p.id}.output, but it runs only when {p.id!r} failed",
                    "unknown-reference",
                    f,
                )
            else:
                self.plans[f].fallback_of = p.id
                continue
            p.fallback = None
        for p in self.plans.values():
            if p.map_from is not None and (
                self.plans[p.map_from].fallback is not None
                or p.map_from in p.refs
                or p.map_from in p.while_refs
            ):
                p.map_from = None  # needs the generated items step

    def step_deps(self, p: StepPlan) -> set[str]:
        deps = set(p.refs) | set(p.needs) | p.if_refs | set(p.items_refs) | (p.while_refs - {p.id})
        if p.map_from:
            deps.add(p.map_from)
        if p.fallback_of:
            deps.add(p.fallback_of)
        for d in list(deps):
            fb = self.plans[d].fallback if d in self.plans else None
            if fb and fb != p.id:
                deps.add(fb)
        return deps & set(self.plans)

    def graph(self) -> dict[str, set[str]]:
        deps = {sid: self.step_deps(p) for sid, p in self.plans.items()}
        state: dict[str, int] = {}
        reported: set[frozenset[str]] = set()
        order = {sid: i for i, sid in enumerate(self.ids)}

        def visit(sid: str, path: list[str]) -> None:
            state[sid] = 1
            path.append(sid)
            for d in sorted(deps[sid], key=order.__getitem__):
                if state.get(d) == 1:
                    cycle = path[path.index(d) :]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        self.report_cycle(cycle)
                elif d not in state:
                    visit(d, path)
            path.pop()
            state[sid] = 2

        for sid in self.ids:
            if sid not in state:
                visit(sid, [])
        return deps

    def report_cycle(self, cycle: list[str]) -> None:
        first = min(cycle, key=self.ids.index)
        i = cycle.index(first)
        ring = cycle[i:] + cycle[:i]
        # `visit` walks from a step to what it depends on; show it in running order.
        shown = [ring[0], *reversed(ring[1:]), ring[0]]
        node = self.plans[first].spec.node
        self.problem(
            value_span(node, "id"),
            f"steps {' -> '.join(shown)} form a cycle without a loop guard: each waits for the one before it",
            "cycle",
            first,
            "a step can use only steps that run before it; to repeat steps, put loop: {to: <first step>, "
            "while: ..., max_iterations: N} on the last one, and read earlier passes with previous.<id>.output",
        )

    def check_loops(self, deps: dict[str, set[str]]) -> None:
        for p in self.plans.values():
            lp = p.spec.loop
            if lp is None:
                continue
            span = value_span(lp.node, "to")
            if lp.to not in self.plans:
                self.problem(
                    span,
                    f"loop 'to' names {lp.to!r}, which is not a step of this workflow",
                    "unknown-step",
                    p.id,
                    self.did_you_mean(lp.to, self.ids, "steps"),
                )
                continue
            if lp.to != p.id and lp.to not in _ancestors(p.id, deps):
                self.problem(
                    span,
                    f"the loop goes back to {lp.to!r}, but {p.id!r} does not come after it",
                    "loop",
                    p.id,
                    f"'to' must be {p.id!r} itself or a step it depends on (through with, needs or if)",
                )


def _ancestors(sid: str, deps: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    stack = [sid]
    while stack:
        for d in deps.get(stack.pop(), ()):
            if d not in seen:
                seen.add(d)
                stack.append(d)
    return seen
