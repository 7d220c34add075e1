"""The shape of a workflow file: fields, their types and shorthands, read into :class:`WorkflowSpec`.

Every mistake becomes a :class:`Problem` at the place it was written; parsing goes on past it, so
that one pass reports everything. What the fields *mean* (references, kinds, the graph) is checked
later, by ``_plan``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..connectors._sources import BROKER_KINDS
from ..errors import ConfigError, DefinitionError
from ..governance.policy import workflow_name_problem
from ..records import RetryPolicy
from ._broker_triggers import check_broker
from ._format import (
    DURATION_PATTERN,
    LOOP_FIELDS,
    RETRY_FIELDS,
    STEP_FIELDS,
    STEP_ID_PATTERN,
    WORKFLOW_FIELDS,
)
from ._problems import Problem
from ._schema import check_schema, compact, is_json_schema
from ._source import NOWHERE, Span, YMap, YSeq, key_span, value_span

if TYPE_CHECKING:
    from ..engine.workflow import Workflow
    from ._registry import StepTypes

RESERVED_IDS = frozenset({"input", "ctx", "steps", "item", "index", "previous", "run", "loop", "range"})
_STEP_ID = re.compile(STEP_ID_PATTERN)
_DURATION = re.compile(DURATION_PATTERN)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,\-?LW#]+$")
_TRIGGER_KINDS = ("schedule", "webhook", "event", *BROKER_KINDS)
_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_MISTAKES = {
    "when": "if", "condition": "if", "depends_on": "needs", "after": "needs", "map": "for_each",
    "foreach": "for_each", "with_items": "for_each", "loop_over": "for_each", "args": "with", "params": "with",
    "inputs": "with", "run": "uses", "type": "uses", "kind": "uses", "action": "uses", "output": "outputs",
    "retries": "retry", "name": "id",
}  # fmt: skip


@dataclass(kw_only=True)
class LoopSpec:
    to: str
    while_: str | bool
    max_iterations: int
    node: YMap


@dataclass(kw_only=True)
class StepSpec:
    id: str
    index: int
    uses: str
    node: YMap
    with_: YMap | None = None
    needs: list[tuple[str, Span]] = field(default_factory=list)
    if_: str | bool | None = None
    for_each: str | list[Any] | None = None
    max_parallel: int | None = None
    loop: LoopSpec | None = None
    retry: RetryPolicy | None = None
    timeout: float | None = None
    on_error: str = "fail"
    concurrency: str | None = None
    labels: list[str] = field(default_factory=list)
    escalate: dict[str, Any] | None = None
    gate: Any = None
    """A :class:`podium.ml.Gate` built from ``gate:``."""
    executor: str | None = None
    description: str = ""

    @property
    def span(self) -> Span:
        return self.node.span


@dataclass(kw_only=True)
class WorkflowSpec:
    name: str
    node: YMap
    version: str = "1"
    description: str = ""
    input_schema: dict[str, Any] | None = None
    timeout: float | None = None
    triggers: list[Any] = field(default_factory=list)
    steps: list[StepSpec] = field(default_factory=list)
    outputs: Any = None
    has_outputs: bool = False


class Reporter:
    """Collects problems for one file."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.text = text
        self.problems: list[Problem] = []

    def at(
        self,
        span: Span,
        message: str,
        code: str = "structure",
        *,
        step: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.problems.append(
            Problem(
                file=self.file,
                line=span.line,
                column=span.column,
                message=message,
                code=code,
                step=step,
                hint=hint,
            )
        )


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def parse_duration(value: Any) -> float | None:
    """Seconds from a number or '500ms'/'30s'/'5m'/'2h'; None if it is not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value > 0 else None
    if isinstance(value, str) and _DURATION.match(value.strip()):
        text = value.strip()
        unit = "ms" if text.endswith("ms") else text[-1]
        return float(text[: -len(unit)]) * _UNITS[unit]
    return None


def _unknown_keys(
    rep: Reporter, node: YMap, known: frozenset[str], where: str, step: str | None = None
) -> None:
    for key in node:
        if key in known:
            continue
        if not isinstance(key, str):
            rep.at(
                key_span(node, key),
                f"{where}: keys must be text, got {_kind(key)}",
                step=step,
                hint="quote the key",
            )
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1)
        guess = _MISTAKES.get(key) if _MISTAKES.get(key) in known else None
        hint = (
            f"did you mean {(guess or close[0])!r}?"
            if (guess or close)
            else f"fields are: {', '.join(sorted(known))}"
        )
        rep.at(key_span(node, key), f"unknown field {key!r} in {where}", step=step, hint=hint)


def parse_workflow(doc: Any, rep: Reporter) -> WorkflowSpec | None:
    """The workflow described by a file's values (None if it is not even a mapping)."""
    if not isinstance(doc, YMap):
        span = getattr(doc, "span", NOWHERE)
        rep.at(span, f"a workflow file must be a mapping with 'name' and 'steps', not {_kind(doc)}")
        return None
    _unknown_keys(rep, doc, WORKFLOW_FIELDS, "the workflow")
    name = doc.get("name")
    if "name" not in doc:
        rep.at(doc.span, "the workflow has no 'name'", hint="add name: my-workflow at the top")
        name = "unnamed"
    elif not isinstance(name, str) or not name.strip():
        rep.at(value_span(doc, "name"), f"'name' must be non-empty text, not {_kind(name)}")
        name = "unnamed"
    elif workflow_name_problem(name):
        rep.at(value_span(doc, "name"), str(workflow_name_problem(name)))
        name = "unnamed"
    spec = WorkflowSpec(name=name, node=doc)
    if "version" in doc:
        v = doc["version"]
        if isinstance(v, str) and v.strip():
            spec.version = v.strip()
        elif isinstance(v, int) and not isinstance(v, bool):
            spec.version = str(v)
        elif isinstance(v, float):
            span = value_span(doc, "version")
            written = rep.text[span.start : span.end].strip() or repr(v)
            rep.at(
                span,
                f"'version' is the number {v!r}, which loses digits (1.10 reads as 1.1)",
                hint=f"quote it: version: '{written}'",
            )
        else:
            rep.at(value_span(doc, "version"), f"'version' must be text or a whole number, not {_kind(v)}")
    if "description" in doc:
        d = doc["description"]
        if isinstance(d, str):
            spec.description = d
        elif d is not None:
            rep.at(value_span(doc, "description"), f"'description' must be text, not {_kind(d)}")
    if "timeout" in doc:
        spec.timeout = parse_duration(doc["timeout"])
        if spec.timeout is None:
            rep.at(
                value_span(doc, "timeout"),
                f"'timeout' must be a positive number of seconds or a duration like '30s', not {_kind(doc['timeout'])}",
            )
    if doc.get("input") is not None:
        spec.input_schema = _parse_input(doc, rep)
    if "triggers" in doc:
        spec.triggers = _parse_triggers(doc, rep)
    if "outputs" in doc:
        spec.outputs = doc["outputs"]
        spec.has_outputs = True
    steps = doc.get("steps")
    if "steps" not in doc:
        rep.at(
            doc.span,
            "the workflow has no 'steps'",
            hint="add steps: with a list of steps (- id: ..., uses: ...)",
        )
    elif not isinstance(steps, YSeq) or not steps:
        rep.at(
            value_span(doc, "steps"),
            "'steps' is an empty list: a workflow needs at least one step"
            if isinstance(steps, YSeq)
            else f"'steps' must be a non-empty list of steps, not {_kind(steps)}",
            hint="write each step as an item: '- id: first' then 'uses: ...' indented under it",
        )
    else:
        seen: dict[str, Span] = {}
        for i, item in enumerate(steps):
            step = _parse_step(item, i, value_span(steps, i), rep)
            if step is None:
                continue
            if step.id in seen:
                rep.at(
                    value_span(step.node, "id"),
                    f"two steps have the id {step.id!r} (the first is at line {seen[step.id].line})",
                    step=step.id,
                    hint="give each step its own id",
                )
                continue
            seen[step.id] = value_span(step.node, "id")
            spec.steps.append(step)
    return spec


def _parse_input(doc: YMap, rep: Reporter) -> dict[str, Any] | None:
    node = doc["input"]
    span = value_span(doc, "input")
    if not isinstance(node, YMap):
        rep.at(
            span,
            f"'input' must be a JSON Schema or a field list (ticket: string), not {_kind(node)}",
            code="input-schema",
        )
        return None
    if is_json_schema(node):
        errors = check_schema(node, "input")
        for e in errors:
            rep.at(span, e, code="input-schema")
        return None if errors else _plain(node)
    schema, problems = compact(node)
    for name, message in problems:
        rep.at(value_span(node, name) if name in node else span, message, code="input-schema")
    # a field whose type is wrong is in the schema as any type: the file does not load (the problem
    # is said), but references to the input are checked in the same round
    return _plain(schema)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _parse_triggers(doc: YMap, rep: Reporter) -> list[Any]:
    node = doc["triggers"]
    if not isinstance(node, YSeq):
        rep.at(value_span(doc, "triggers"), f"'triggers' must be a list, not {_kind(node)}")
        return []
    out = []
    for i, t in enumerate(node):
        span = value_span(node, i)
        if t == "manual":
            out.append("manual")
            continue
        if not isinstance(t, YMap):
            rep.at(
                span, f"a trigger is 'manual' or a mapping with schedule, webhook, event or a broker, not {_kind(t)}"
            )
            continue
        _unknown_keys(rep, t, frozenset({*_TRIGGER_KINDS, "input", "description"}), "a trigger")
        kinds = [k for k in _TRIGGER_KINDS if k in t]
        if len(kinds) != 1:
            rep.at(
                span,
                "a trigger needs exactly one of schedule, webhook, event, nats, redis, amqp or mqtt"
                + (f" (it has {', '.join(kinds)})" if kinds else ""),
            )
            continue
        kind = kinds[0]
        value = t[kind]
        vspan = value_span(t, kind)
        if kind in BROKER_KINDS:
            problems = check_broker(kind, value, vspan)
            for where, message, hint in problems:
                rep.at(where, message, hint=hint)
            if problems:
                continue
        elif kind == "schedule":
            ok = isinstance(value, str) and (
                value.strip() in _CRON_MACROS
                or (len(value.split()) == 5 and all(_CRON_FIELD.match(f) for f in value.split()))
            )
            if not ok:
                rep.at(
                    vspan,
                    f"schedule {value!r} is not a cron expression",
                    hint="five fields, e.g. '0 9 * * 1-5', or @hourly/@daily/@weekly/@monthly",
                )
                continue
            from ._cron import cron_problem  # the trigger runner's own parser (croniter), when installed

            problem = cron_problem(value, t.get("timezone") if isinstance(t, Mapping) else None)
            if problem is not None:
                rep.at(vspan, problem)
                continue
        elif kind == "webhook":
            path = value.get("path") if isinstance(value, Mapping) else value
            if not isinstance(path, str) or not re.fullmatch(r"/hooks(/[A-Za-z0-9._~-]+)+", path):
                rep.at(
                    vspan,
                    f"a webhook path is /hooks/ followed by letters, digits, '.', '_', '~' or '-' segments "
                    f"(podium serve answers it there), not {path!r}",
                    hint="webhook: /hooks/tickets",
                )
                continue
            if isinstance(value, YMap):
                _unknown_keys(rep, value, frozenset({"path", "method"}), "a webhook")
                method = value.get("method", "POST")
                if method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                    rep.at(
                        value_span(value, "method"),
                        f"webhook method {method!r} is not one of GET, POST, PUT, PATCH, DELETE",
                    )
        elif not isinstance(value, str) or not value.strip():
            rep.at(vspan, "an event trigger needs an event name")
            continue
        out.append(_plain(t))
    return out


def _parse_step(node: Any, index: int, span: Span, rep: Reporter) -> StepSpec | None:
    if not isinstance(node, YMap):
        rep.at(span, f"step {index + 1} must be a mapping with 'id' and 'uses', not {_kind(node)}")
        return None
    sid = node.get("id")
    label = sid if isinstance(sid, str) else None
    _unknown_keys(rep, node, STEP_FIELDS, f"step {label!r}" if label else f"step {index + 1}", step=label)
    ok = True
    if "id" not in node:
        rep.at(span, f"step {index + 1} has no 'id'", hint="add id: a_name (letters, digits and '_')")
        ok = False
    elif not isinstance(sid, str) or not _STEP_ID.match(sid):
        fixed = re.sub(r"[^A-Za-z0-9_]", "_", str(sid)) if isinstance(sid, str) else None
        rep.at(
            value_span(node, "id"),
            f"step id {sid!r} is not valid: use letters, digits and '_', starting with a letter",
            hint=f"id: {fixed}" if fixed and fixed != sid else None,
        )
        ok = False
    elif sid in RESERVED_IDS or "__" in sid:
        rep.at(
            value_span(node, "id"),
            f"step id {sid!r} is reserved" + (" ('__' marks steps Podium generates)" if "__" in sid else ""),
            step=sid,
            hint="choose another id",
        )
        ok = False
    uses = node.get("uses")
    if "uses" not in node:
        rep.at(
            span,
            "the step has no 'uses'",
            step=label,
            hint="say what it runs: a step type (set, log...) or package.module:function",
        )
        uses = ""
    elif not isinstance(uses, str) or not uses.strip():
        rep.at(value_span(node, "uses"), f"'uses' must be text, not {_kind(uses)}", step=label)
        uses = ""
    if not ok:
        return None
    # A step whose 'uses' is missing or wrong stays a step (uses ""): later steps may read it, its
    # own templates are checked, and it is named in hints; the plan resolves no kind for it.
    assert isinstance(sid, str) and isinstance(uses, str)
    step = StepSpec(id=sid, index=index, uses=uses.strip(), node=node)

    def bad(key: str, message: str, hint: str | None = None) -> None:
        rep.at(value_span(node, key), message, step=sid, hint=hint)

    if "description" in node:
        if isinstance(node["description"], str):
            step.description = node["description"]
        elif node["description"] is not None:
            bad("description", f"'description' must be text, not {_kind(node['description'])}")
    if "with" in node and node["with"] is not None:
        w = node["with"]
        if not isinstance(w, YMap):
            bad(
                "with",
                f"'with' must be a mapping of argument names to values, not {_kind(w)}",
                "write 'with:' then 'name: value' lines indented under it",
            )
        else:
            for k in w:
                if not isinstance(k, str):
                    rep.at(
                        key_span(w, k),
                        f"argument names must be text, got {_kind(k)}",
                        step=sid,
                        hint="quote it",
                    )
            step.with_ = w
    if "needs" in node:
        n = node["needs"]
        items: list[tuple[Any, Span]]
        if isinstance(n, str):
            items = [(n, value_span(node, "needs"))]
        elif isinstance(n, YSeq):
            items = [(v, value_span(n, i)) for i, v in enumerate(n)]
        else:
            bad("needs", f"'needs' must be a step id or a list of them, not {_kind(n)}")
            items = []
        for v, s in items:
            if isinstance(v, str):
                step.needs.append((v, s))
            else:
                rep.at(s, f"'needs' lists step ids, not {_kind(v)}", step=sid)
    if "if" in node:
        v = node["if"]
        if isinstance(v, str | bool):
            step.if_ = v
        else:
            bad("if", f"'if' must be an expression or true/false, not {_kind(v)}")
    if "for_each" in node:
        v = node["for_each"]
        if isinstance(v, str | list):
            step.for_each = v
        else:
            bad("for_each", f"'for_each' must be a list or a {{{{ expression }}}} giving one, not {_kind(v)}")
    if "max_parallel" in node:
        v = node["max_parallel"]
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            bad("max_parallel", f"'max_parallel' must be a whole number >= 1, not {_kind(v)}")
        elif "for_each" not in node:
            bad(
                "max_parallel",
                "'max_parallel' only applies with 'for_each'",
                "add for_each, or remove max_parallel",
            )
        else:
            step.max_parallel = v
    if "loop" in node:
        step.loop = _parse_loop(node, sid, rep)
    if "retry" in node:
        step.retry = _parse_retry(node, sid, rep)
    if "timeout" in node:
        step.timeout = parse_duration(node["timeout"])
        if step.timeout is None:
            bad(
                "timeout",
                f"'timeout' must be a positive number of seconds or a duration like '30s', not {_kind(node['timeout'])}",
            )
    if "on_error" in node:
        v = node["on_error"]
        if isinstance(v, str) and v.strip():
            step.on_error = v.strip()
        else:
            bad("on_error", f"'on_error' must be fail, continue or a fallback step id, not {_kind(v)}")
    if "labels" in node:
        v = node["labels"]
        labels = [v] if isinstance(v, str) else v
        if isinstance(labels, list) and all(isinstance(x, str) and x.strip() for x in labels):
            step.labels = [x.strip() for x in labels]
        else:
            bad("labels", f"'labels' must be a label or a list of labels, not {_kind(v)}", "labels: [gpu]")
    if "concurrency" in node:
        v = node["concurrency"]
        if isinstance(v, str) and v.strip():
            step.concurrency = v.strip()
        else:
            bad("concurrency", f"'concurrency' must be a name, not {_kind(v)}")
    if "escalate" in node:
        step.escalate = _parse_escalate(node["escalate"], bad)
    if "gate" in node:
        step.gate = _parse_gate(node, sid, rep)
    if "executor" in node:
        v = node["executor"]
        from ..engine.remote import known_executors

        if isinstance(v, str) and v.strip() in known_executors():
            step.executor = v.strip()
        elif isinstance(v, str) and v.strip():
            bad("executor", f"executor {v.strip()!r} is not known (known: {', '.join(known_executors()) or 'none'})",
                "executor: ray (pip install 'podium[ray]')")
        else:
            bad("executor", f"'executor' must be the name of an executor like ray, not {_kind(v)}", "executor: ray")
    return step


GATES, GATE_RULES = "podium.ml", "podium.ml._rules"
"""Where ``gate:`` is parsed (the ML room's ``Gate`` and ``rule_from``), named rather than imported."""
_GATE_HINT = "gate: {rows: rows, rules: [{rule: range, column: age, min: 0, on: quarantine}]}"


def _parse_gate(node: YMap, sid: str, rep: Reporter) -> Any:
    """A :class:`podium.ml.Gate`; each rule's mistake is reported at the rule's own line."""
    v = node["gate"]
    try:  # reached by name, like step kinds: the YAML room does not import the ML room
        import importlib

        Gate = importlib.import_module(GATES).Gate
        rule_from = importlib.import_module(GATE_RULES).rule_from
    except ImportError as exc:
        from ..errors import install_hint

        rep.at(value_span(node, "gate"), f"'gate' needs NumPy and SciPy ({exc})", step=sid, hint=install_hint("ml"))
        return None
    rules = v if isinstance(v, YSeq) else v.get("rules") if isinstance(v, YMap) else None
    if not isinstance(rules, YSeq) or not rules:
        rep.at(value_span(node, "gate"), "'gate' must be a list of rules or a mapping with 'rules'", step=sid, hint=_GATE_HINT)
        return None
    ok = True
    for i, r in enumerate(rules):
        if not isinstance(r, YMap):
            rep.at(value_span(rules, i), f"gate rule {i + 1} must be a mapping, not {_kind(r)}", step=sid, hint=_GATE_HINT)
            ok = False
            continue
        try:
            rule_from(_plain(r), f"gate rule {i + 1}")
        except DefinitionError as exc:
            rep.at(value_span(rules, i), str(exc), step=sid)
            ok = False
    if not ok:
        return None
    spec = _plain(v)
    if isinstance(spec, dict) and "timeout" in spec:
        spec["timeout"] = parse_duration(spec["timeout"])
        if spec["timeout"] is None:
            rep.at(value_span(v, "timeout"), "'gate.timeout' must be a duration like '4h'", step=sid, hint=_GATE_HINT)
            return None
    try:
        return Gate.from_spec(spec, "")
    except (DefinitionError, TypeError) as exc:
        rep.at(value_span(node, "gate"), str(exc).removeprefix(": "), step=sid, hint=_GATE_HINT)
        return None


_ESCALATE_HINT = "escalate: {below: 0.8, role: approver, timeout: 4h}"


def _parse_escalate(v: Any, bad: Callable[..., None]) -> dict[str, Any] | None:
    if not isinstance(v, dict):
        bad("escalate", f"'escalate' must be a mapping, not {_kind(v)}", _ESCALATE_HINT)
        return None
    unknown = sorted(set(v) - {"below", "field", "role", "title", "timeout", "on_timeout"})
    below = v.get("below")
    if unknown:
        bad("escalate", f"'escalate' has unknown field(s) {', '.join(unknown)}", _ESCALATE_HINT)
    elif not isinstance(below, int | float) or isinstance(below, bool) or not 0 <= below <= 1:
        bad("escalate", f"'escalate.below' must be a confidence between 0 and 1, not {_kind(below)}", _ESCALATE_HINT)
    elif v.get("on_timeout", "reject") not in ("reject", "accept"):
        bad("escalate", "'escalate.on_timeout' must be reject or accept", _ESCALATE_HINT)
    elif "timeout" in v and parse_duration(v["timeout"]) is None:
        bad("escalate", f"'escalate.timeout' must be a duration like '4h', not {_kind(v['timeout'])}", _ESCALATE_HINT)
    else:
        out = {k: v[k] for k in v}
        if "timeout" in out:
            out["timeout"] = parse_duration(out["timeout"])
        return out
    return None


def _parse_loop(node: YMap, sid: str, rep: Reporter) -> LoopSpec | None:
    lp = node["loop"]
    if not isinstance(lp, YMap):
        rep.at(
            value_span(node, "loop"),
            f"'loop' must be a mapping with to, while and max_iterations, not {_kind(lp)}",
            step=sid,
        )
        return None
    _unknown_keys(rep, lp, LOOP_FIELDS, "loop", step=sid)
    ok = True
    to = lp.get("to")
    if not isinstance(to, str) or not to:
        rep.at(
            value_span(lp, "to") if "to" in lp else lp.span,
            "the loop needs 'to': the step where the next iteration starts",
            code="loop",
            step=sid,
        )
        ok = False
    cond = lp.get("while")
    if not isinstance(cond, str | bool):
        rep.at(
            value_span(lp, "while") if "while" in lp else lp.span,
            "the loop needs 'while': the condition to loop again",
            code="loop",
            step=sid,
        )
        ok = False
    n = lp.get("max_iterations")
    if "max_iterations" not in lp:
        rep.at(
            lp.span,
            "the loop has no 'max_iterations': a loop needs this guard so that it always ends",
            code="loop",
            step=sid,
            hint="add max_iterations: 5 (the run fails if the loop would go past it)",
        )
        ok = False
    elif not isinstance(n, int) or isinstance(n, bool) or n < 1:
        rep.at(
            value_span(lp, "max_iterations"),
            f"'max_iterations' must be a whole number >= 1, not {_kind(n)}",
            code="loop",
            step=sid,
        )
        ok = False
    if not ok:
        return None
    assert isinstance(to, str) and isinstance(cond, str | bool) and isinstance(n, int)
    return LoopSpec(to=to, while_=cond, max_iterations=n, node=lp)


def _parse_retry(node: YMap, sid: str, rep: Reporter) -> RetryPolicy | None:
    v = node["retry"]
    span = value_span(node, "retry")
    opts: dict[str, Any] = {}
    if isinstance(v, int) and not isinstance(v, bool):
        opts["max_attempts"] = v
    elif isinstance(v, YMap):
        _unknown_keys(rep, v, RETRY_FIELDS, "retry", step=sid)
        for key in ("max_attempts", "backoff", "jitter"):
            if key in v:
                x = v[key]
                if (
                    isinstance(x, bool)
                    or not isinstance(x, int | float)
                    or (key == "max_attempts" and not isinstance(x, int))
                ):
                    rep.at(value_span(v, key), f"retry {key} must be a number, not {_kind(x)}", step=sid)
                    return None
                opts[key] = x
        for key in ("initial_interval", "max_interval"):
            if key in v:
                d = 0.0 if v[key] == 0 else parse_duration(v[key])
                if d is None:
                    rep.at(
                        value_span(v, key),
                        f"retry {key} must be seconds or a duration like '2s', not {_kind(v[key])}",
                        step=sid,
                    )
                    return None
                opts[key] = d
    else:
        rep.at(
            span,
            f"'retry' must be a number of attempts or a mapping (max_attempts, initial_interval...), not {_kind(v)}",
            step=sid,
        )
        return None
    try:
        return RetryPolicy(**opts)
    except (ConfigError, TypeError) as exc:
        rep.at(span, str(exc), step=sid)
        return None


class Loader(Protocol):
    """What planning asks of the loader that reads a file (its module allow-list, its step kinds,
    and subworkflows named by file)."""

    @property
    def modules(self) -> Sequence[str]: ...

    @property
    def registry(self) -> StepTypes: ...

    @property
    def capabilities(self) -> Mapping[str, Any] | None: ...

    resolved: int
    """How many references to code or files of a folder (``uses: module:function``, a tool's
    ``python:``, a subworkflow) its files have resolved: a YAML text that resolves none is the same
    workflow in any folder."""

    def load_child(self, ref: str, base_dir: str) -> tuple[Workflow | None, str, str | None]: ...
