"""Static checks of a plan before anything runs: skills, permissions, arguments, data flow, shape,
policy and budget. Every problem names the step and the field, and says how to fix it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..governance.policy import Policy, connector_refusal, tool_refusal
from ._plan import Plan, PlanStep, producer
from ._policy import GoalPolicy
from ._skills import Skills, is_control_name

_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_TEMPLATE = re.compile(r"\{\{|\{%|\{#")
_COMPATIBLE = {("integer", "number")}


@dataclass(frozen=True, kw_only=True)
class PlanProblem:
    """One reason a plan may not run."""

    step: str
    """The step id (``plan`` for the whole plan)."""
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.step}.{self.field}: {self.message}" if self.field else f"{self.step}: {self.message}"


def estimate(plan: Plan, skills: Skills) -> tuple[float, float]:
    """Estimated cost (USD) and latency (seconds, along the longest path) of ``plan``."""
    cost = 0.0
    finish: dict[str, float] = {}
    for s in plan.steps:
        sk = skills.get(s.skill)
        cost += sk.cost if sk else 0.0
        start = max((finish.get(n, 0.0) for n in s.needs), default=0.0)
        finish[s.id] = start + (sk.latency if sk else 0.0)
    return cost, max(finish.values(), default=0.0)


def _type_of(schema: Mapping[str, Any]) -> str | None:
    t = schema.get("type")
    return t if isinstance(t, str) else None


def _check_value(value: Any, schema: Mapping[str, Any]) -> str | None:
    import jsonschema

    from ..governance.limits import value_problem

    # A planner (a model) wrote it: NaN passes a schema's maximum (it compares false with any bound),
    # and the call the step makes would carry it on to the system it calls.
    if (problem := value_problem(value, where="the argument", surrogates=False)) is not None:
        return f"{problem}; it is not a finite number"

    from ..models import _patterns

    try:
        _patterns.validate(value, dict(schema))  # a pattern within a time bound: a planner wrote the text
    except jsonschema.ValidationError as exc:
        return exc.message
    return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)] + [k for k in value if isinstance(k, str)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def validate_plan(
    plan: Plan,
    skills: Skills,
    *,
    roles: Sequence[str] | None = (),
    policy: GoalPolicy | None = None,
    registered_tools: Mapping[str, Any] | None = None,
    allowed_tools: Sequence[str] | None = None,
    max_cost: float | None = None,
    policies: Sequence[tuple[str, Policy]] = (),
) -> list[PlanProblem]:
    """Every problem of ``plan`` (an empty list: it may run).

    :param roles: the caller's roles (None: every role, the local user); a skill they may not use is
        a problem.
    :param registered_tools: the security registry (``await client.capabilities()``): a tool skill
        must name one of its entries.
    :param allowed_tools: the workflow policy's ``allowed_tools`` (None: no restriction).
    :param max_cost: a further cost ceiling (the governance policy's ``max_run_cost``).
    :param policies: the governance policies the plan's run will be held by, as ``(who, policy)``
        pairs (:meth:`podium.governance.enforcement.RunGovernance.over_child`: its own workflow's and
        those of every run above it): each must allow every tool and connector operation of the plan
        (a problem says what the run would be told), and the estimate must be within each one's
        ``max_run_cost``.
    """
    policy = policy or GoalPolicy()
    out: list[PlanProblem] = []

    def bad(step: str, field: str, message: str) -> None:
        out.append(PlanProblem(step=step, field=field, message=message))

    if not plan.steps:
        bad("plan", "steps", "the plan has no steps; give at least one step that works toward the goal")
    if len(plan.steps) > policy.max_steps:
        bad("plan", "steps", f"{len(plan.steps)} steps is over the limit of {policy.max_steps}; plan fewer steps")
    ids: dict[str, PlanStep] = {}
    for s in plan.steps:
        if not _ID.match(s.id):
            bad(s.id, "id", "a step id is lowercase letters, digits and '_', starting with a letter")
        if s.id in ids or s.id in plan.kept:
            bad(s.id, "id", "this id is used twice; give each step its own id")
        ids[s.id] = s
    usable = {sk.name for sk in skills.usable(roles)}
    for s in plan.steps:
        sk = skills.get(s.skill)
        if sk is None or is_control_name(s.skill):
            known = ", ".join(sorted(usable)) or "none"
            bad(s.id, "skill", f"there is no skill {s.skill!r}; the skills are: {known}")
            continue
        if s.skill not in usable:
            bad(s.id, "skill", f"your roles ({', '.join(roles or ()) or 'none'}) may not use {s.skill!r} (it needs one of: "
                f"{', '.join(sk.roles)})")
        if policy.allowed_skills is not None and s.skill not in policy.allowed_skills:
            bad(s.id, "skill", f"the goal's policy allows only {', '.join(policy.allowed_skills)}")
        if sk.kind == "tool":
            if registered_tools is not None and sk.target not in registered_tools:
                bad(s.id, "skill", f"tool {sk.target!r} is not in the capability registry; an admin adds it with "
                    f"podium tools add {sk.target} ...")
            if allowed_tools is not None and sk.target not in allowed_tools:
                bad(s.id, "skill", f"the workflow policy does not allow tool {sk.target!r}")
            if refused := tool_refusal(list(policies), sk.target):
                bad(s.id, "skill", f"a policy over the plan's run does not allow tool {sk.target!r}: {refused}")
        if sk.kind == "connector" and (refused := connector_refusal(list(policies), *_operation(sk.target))):
            bad(s.id, "skill", f"a policy over the plan's run does not allow {sk.target!r}: {refused}")
        for key, value in s.args.items():
            prop = sk.properties.get(key)
            if prop is None:
                bad(s.id, f"args.{key}", f"{s.skill} takes no argument {key!r}; it takes: "
                    f"{', '.join(sk.properties) or 'none'}")
                continue
            if any(_TEMPLATE.search(t) for t in _strings(value)):
                bad(s.id, f"args.{key}", "arguments are literal values; templates ({{ }}) are not allowed in plans")
                continue
            why = _check_value(value, prop)
            if why:
                bad(s.id, f"args.{key}", f"{why} (schema: {dict(prop)})")
        for n in s.needs:
            if n not in ids and n not in plan.kept:
                bad(s.id, "needs", f"needs {n!r}, which is not a step of the plan")
        for req in sk.required:
            if req in s.args:
                continue
            src = producer(req, s, ids, skills, plan.kept)
            if src is None:
                bad(s.id, f"args.{req}", f"{s.skill} needs {req!r}: give it in args, or add to needs a step whose "
                    f"output has {req!r}")
                continue
            src_skill = skills.get(ids[src].skill if src in ids else plan.kept[src])
            assert src_skill is not None
            have, want = _type_of(src_skill.produces[req]), _type_of(sk.properties.get(req, {}))
            if have and want and have != want and (have, want) not in _COMPATIBLE:
                bad(s.id, f"args.{req}", f"{src} gives {req!r} as {have}, but {s.skill} takes {want}")
    cycle = _cycle(ids)
    if cycle:
        bad(cycle[0], "needs", f"the steps form a cycle ({' -> '.join(cycle)}); a plan is acyclic")
    cost, _ = estimate(plan, skills)
    ceilings = [c for c in (policy.max_cost, max_cost, *(p.max_run_cost for _, p in policies)) if c is not None]
    if ceilings and cost > min(ceilings):
        bad("plan", "cost", f"estimated cost ${cost:.4f} is over the budget of ${min(ceilings):.4f}; "
            "use fewer or cheaper steps")
    return out


def _operation(target: str) -> tuple[str, str]:
    connector, _, operation = target.partition(".")
    return connector, operation


def _cycle(steps: Mapping[str, PlanStep]) -> list[str]:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(sid: str) -> list[str]:
        state[sid] = 1
        path.append(sid)
        for n in steps[sid].needs:
            if n not in steps:
                continue
            if state.get(n) == 1:
                return [*path[path.index(n):], n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        path.pop()
        state[sid] = 2
        return []

    for sid in steps:
        if sid not in state:
            found = visit(sid)
            if found:
                return found
    return []
