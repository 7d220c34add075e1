"""The goal run: plan, validate (repairing a bounded number of times), approve, run, re-plan the rest.

One workflow, one step (``pursue``). Every plan is a durable call (``pursue/plan``, ``plan-2``...)
holding the plan, why it was made, its problems and its estimate; each plan runs as a child run of
its own pinned workflow version. A resumed goal run replays all of it from the log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .. import _serde
from ..engine.history import fold
from ..engine.workflow import Workflow
from ..errors import ConfigError, NonRetryableError
from ..governance import capabilities
from ..models import OutputInvalid
from ..records import NO_RETRY
from ._plan import Plan
from ._planners import PlanRequest, RulePlanner
from ._policy import GoalPolicy
from ._run import compile_plan
from ._skills import Skills
from ._validate import estimate, validate_plan

STEP = "pursue"


@dataclass(frozen=True, kw_only=True)
class _Goal:
    skills: Skills
    planner: Any
    policy: GoalPolicy
    name: str


def goal_workflow(
    skills: Skills, *, planner: Any = None, policy: GoalPolicy | None = None, name: str = "goal"
) -> Workflow:
    """The workflow that pursues goals over ``skills``: input ``{"goal", "context"}``, and optionally
    ``"roles"`` to narrow the caller's roles (never to widen them).

    Planner, policy and skills are part of the definition, never of the input: whoever starts a goal
    run cannot lift its approvals or budget. The roles a plan is made for are those of the principal
    that started the run (for a child run, its root run), as the signed audit log records them."""
    g = _Goal(skills=skills, planner=planner or RulePlanner(), policy=policy or GoalPolicy(), name=name)
    wf = Workflow(name, version=f"{skills.name}-{len(skills)}", description="Pursue a goal with a validated plan")

    @wf.step(id=STEP, retry=NO_RETRY)
    async def pursue(ctx: Any, input: Any) -> Any:
        return await _pursue(g, ctx, input)

    return wf


async def _registered(store: Any) -> dict[str, str]:
    # The security registry as the engine reads it (no caller's permission involved).
    return {k: v.kind for k, v in (await capabilities.load(store)).items()}


async def _starter(ctx: Any) -> dict[str, Any]:
    """Whom this goal run plans for: who started it, from the audit log (``roles`` None: every role)."""
    who = await ctx.started_by()
    if who is None:
        return {"by": None, "roles": []}
    return {"by": who.name, "roles": None if who.local else list(who.roles)}


def _roles(starter: dict[str, Any], asked: Any) -> list[str] | None:
    """The starter's roles, narrowed by the input's ``roles`` if it gives some (never widened)."""
    held = starter["roles"]
    if asked is None:
        return held if held is None else list(held)
    if not isinstance(asked, list) or not all(isinstance(r, str) for r in asked):
        raise NonRetryableError('"roles" in a goal run\'s input narrows the caller\'s roles: a list of role names')
    return list(asked) if held is None else [r for r in asked if r in held]


async def _keep(record: dict[str, Any], ctx: Any, cause: str) -> dict[str, Any]:
    # Once per plan (a durable call): the audit entry and the record are written together. The audit
    # log is never erased: it gets the cause, not the reason (which quotes a failed step's error and
    # the planner's words, both of which may hold the run's data).
    await ctx.governance.audit(
        "goal.plan" if record["n"] == 1 else "goal.replan",
        n=record["n"],
        reason=cause,
        steps=[s["skill"] for s in record["plan"]["steps"]],
        valid=not record["problems"],
        planned_for=record["for"],
    )
    return record


async def _make_plan(
    g: _Goal, ctx: Any, request: PlanRequest, n: int, why: str, registered: dict[str, str], who: dict[str, Any],
    cause: str = "",
) -> tuple[Plan | None, dict[str, Any]]:
    """Ask the planner, validate, send problems back up to ``max_repairs`` times; record the outcome.
    ``cause`` is why in words that hold no data (what the audit log gets); default ``why``."""
    policy = g.policy
    roles = who["roles"]
    held_by = ctx.governance.over_child(f"{g.name}-plan")  # the plan's run: its policy and every run's above
    problems: list[str] = []
    attempts = 0
    plan: Plan | None = None
    data: Any = None
    kept = dict((request.previous or {}).get("kept") or {})
    kept.update({s["id"]: s["skill"] for s in (request.previous or {}).get("steps", []) if s["id"] in request.done})
    repairs = policy.max_repairs
    if getattr(g.planner, "max_repairs", None) is not None:  # a small model rarely fixes its own plan
        repairs = min(repairs, g.planner.max_repairs)
    for attempt in range(repairs + 1):
        attempts = attempt + 1
        try:
            data = await g.planner.plan(ctx, _replace(request, problems=tuple(problems)))
            plan = Plan.from_data(data, goal=request.goal, kept=kept)
            found = validate_plan(
                plan,
                g.skills,
                roles=roles,
                policy=policy,
                registered_tools=registered,
                policies=held_by,
            )
            problems = [str(p) for p in found]
        except (ConfigError, ValueError, OutputInvalid) as exc:  # a malformed answer, a model's invalid output
            plan, problems = None, [str(exc)]
        if not problems:
            break
    cost, latency = estimate(plan, g.skills) if plan else (0.0, 0.0)
    ok = plan is not None and not problems
    record = {
        "n": n,
        "reason": why + (f" ({plan.reason})" if plan and plan.reason else ""),
        "planner": getattr(g.planner, "name", type(g.planner).__name__),
        "attempts": attempts,
        "problems": problems,
        "plan": plan.to_dict() if plan else {"goal": request.goal, "steps": [], "kept": kept, "raw": data},
        "cost": cost,
        "latency": latency,
        "scopes": {s.id: sorted(s.args) for s in plan.steps} if plan else {},
        "for": who,
    }
    record = await ctx.call(_keep, record, ctx, cause or why, name="plan")
    return (plan if ok else None), record


def _replace(request: PlanRequest, **changes: Any) -> PlanRequest:
    from dataclasses import replace

    return replace(request, **changes)


async def _child_state(store: Any, run_id: str) -> dict[str, Any]:
    # The engine's own read of its child (whoever started the goal may not read payloads).
    outputs, failed, error = {}, None, ""
    for v in fold(await store.load_events(run_id)):
        if "/" in v.step:
            continue
        if v.status.value == "completed":
            outputs[v.step] = v.output
        elif v.status.value == "failed" and failed is None:
            failed = v.step
            error = (v.error or {}).get("message", "") if isinstance(v.error, dict) else str(v.error)
    return {"outputs": outputs, "failed": failed, "error": error}


CONTEXT_SIGNAL = "context"
"""The signal that changes a goal run's context (``podium runs signal RUN context --payload '{...}'``): its
payload is merged over the context; a plan not yet running is made again for it."""


async def _context_signal(store: Any, run_id: str) -> Any:
    # A look at the run's signals without waiting (a durable call: a resumed run sees what it saw).
    text = (await store.get_signals(run_id)).get(CONTEXT_SIGNAL)
    return _serde.loads(text) if text else None


async def _pursue(g: _Goal, ctx: Any, input: Any) -> Any:
    if not isinstance(input, dict) or not isinstance(input.get("goal"), str) or not input["goal"].strip():
        raise NonRetryableError('a goal run takes {"goal": "what to achieve", "context": {...}}')
    goal, context = input["goal"].strip(), dict(input.get("context") or {})
    starter = await ctx.call(_starter, ctx, name="starter")
    who = {"by": starter["by"], "roles": _roles(starter, input.get("roles"))}
    roles = who["roles"]
    policy = g.policy
    registered = await ctx.call(_registered, ctx.store, name="registry")
    usable = tuple(s for s in g.skills.usable(roles) if policy.allowed_skills is None or s.name in policy.allowed_skills)
    request = PlanRequest(goal=goal, skills=usable, context=context, max_steps=policy.max_steps)
    plan, record = await _make_plan(g, ctx, request, 1, "initial plan", registered, who)
    outputs: dict[str, Any] = {}
    records = [record]
    n = 1
    while True:
        if plan is None:
            raise NonRetryableError(
                f"no valid plan for {goal!r} after {record['attempts']} tries: " + "; ".join(record["problems"][:5])
            )
        why = policy.needs_approval(plan, g.skills, record["cost"])
        if why:
            decision = await ctx.approval(
                {"plan": plan.to_dict(), "graph": plan.graph(), "cost": record["cost"], "why": why},
                # the goal is the run's input (a payload, in the request's payload); the title is read
                # without payloads.read, so it names the plan's skills (definitions) only
                title=f"approve plan {n} of a goal: {', '.join(dict.fromkeys(s.skill for s in plan.steps))}"[:200],
                role=policy.approver_role,
                name=f"plan-{n}",
            )
            if not decision.get("approved"):
                return {"goal": goal, "status": "rejected", "by": decision.get("by"), "comment": decision.get("comment", ""),
                        "plans": n, "outputs": outputs}
            if decision.get("edited"):
                plan = _edited(g, plan, decision.get("payload"), roles, registered, ctx.governance.over_child(f"{g.name}-plan"))
        fresh = await ctx.call(_context_signal, ctx.store, ctx.run_id, name=f"context-{n}")
        if isinstance(fresh, dict) and {**context, **fresh} != context and n <= policy.max_replans:
            changed = sorted(k for k in fresh if context.get(k) != fresh[k])
            context = {**context, **fresh}  # the world moved while the plan waited: plan the rest again
            n += 1
            request = _replace(request, context=context, previous=plan.to_dict(), done=dict(outputs))
            plan, record = await _make_plan(
                g, ctx, request, n, f"replan: the context changed ({', '.join(changed)})", registered, who,
                "replan: the context changed",
            )
            records.append(record)
            continue
        wf, _text = compile_plan(plan, g.skills, name=f"{g.name}-plan", floor=policy.min_confidence)
        kept_in = {k: outputs[k] for k in plan.kept if k in outputs}
        try:
            out = await ctx.run_workflow(wf, {"kept": kept_in}, name=f"plan-{n}")
        except NonRetryableError as exc:
            child = f"{ctx.idempotency_key}/plan-{n}".replace(":", ".")
            state = await ctx.call(_child_state, ctx.store, child, name="outcome")
            outputs.update(state["outputs"])
            if n > policy.max_replans:
                raise NonRetryableError(
                    f"goal {goal!r}: step {state['failed']!r} failed and the replanning budget "
                    f"({policy.max_replans}) is spent: {state['error'] or exc}"
                ) from None
            n += 1
            request = _replace(
                request, previous=plan.to_dict(), done=dict(outputs), failed=state["failed"], error=state["error"] or str(exc)
            )
            plan, record = await _make_plan(
                g, ctx, request, n, f"replan after {state['failed']} failed: {state['error'][:200]}", registered, who,
                f"replan after {state['failed']} failed",
            )
            records.append(record)
            continue
        del out  # the child's output is its sinks; every finished step's output is read instead
        child = f"{ctx.idempotency_key}/plan-{n}".replace(":", ".")
        state = await ctx.call(_child_state, ctx.store, child, name="outcome")
        outputs.update(state["outputs"])
        return {"goal": goal, "status": "completed", "plans": n, "replans": n - 1, "outputs": outputs}


def _edited(
    g: _Goal, plan: Plan, payload: Any, roles: list[str] | None, registered: dict[str, str], held_by: Any
) -> Plan:
    """The plan an approver edited: checked like any plan, against the same skills, roles, goal
    policy and governance policies (an edit cannot smuggle in a skill or a tool a policy forbids)."""
    data = payload.get("plan") if isinstance(payload, dict) else None
    try:
        edited = Plan.from_data(data, goal=plan.goal, kept=plan.kept)
    except ConfigError as exc:
        raise NonRetryableError(f"the edited plan is not valid: {exc}") from None
    problems = validate_plan(
        edited,
        g.skills,
        roles=roles,
        policy=g.policy,
        registered_tools=registered,
        policies=held_by,
    )
    if problems:
        raise NonRetryableError("the edited plan is not valid: " + "; ".join(map(str, problems)))
    return edited


def plans_of(history: Any) -> list[dict[str, Any]]:
    """Every plan record of a goal run, in order, from its history."""
    out = []
    for v in history.steps:
        named = v.step == f"{STEP}/plan" or v.step.startswith(f"{STEP}/plan-")
        if named and v.status.value == "completed" and isinstance(v.output, dict):
            out.append(v.output)
    return sorted(out, key=lambda r: r.get("n", 0))


def render(history: Any) -> str:
    """``podium plan show``: every plan of a goal run as a text graph, with why and its status."""
    plans = plans_of(history)
    if not plans:
        raise ConfigError(f"run {history.run.id} is not a goal run (it has no plan); start one with podium goals start")
    lines = [f"run {history.run.id}  {history.run.status.value}"]
    for rec in plans:
        plan = Plan.from_data({"steps": rec["plan"].get("steps", [])}, goal=rec["plan"].get("goal", ""),
                              kept=rec["plan"].get("kept") or {}, reason=rec.get("reason", ""))
        head = "plan" if rec["n"] == 1 else "replan"
        lines.append("")
        lines.append(f"{head} {rec['n']} by {rec.get('planner')} ({rec['attempts']} tries, est. ${rec['cost']:.4f}, "
                     f"~{rec['latency']:.1f}s)")
        lines.append(plan.graph())
        for p in rec.get("problems", []):
            lines.append(f"  problem: {p}")
        if rec.get("scopes"):
            lines.append("  context given to each step: " + json.dumps(rec["scopes"], sort_keys=True))
    return "\n".join(lines)
