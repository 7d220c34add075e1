"""A plan: a small workflow graph of skill steps, as JSON (what planners write) and as Podium YAML
(what runs)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class PlanStep:
    """One step of a plan: a skill called with literal arguments after the steps it needs."""

    id: str
    skill: str
    args: Mapping[str, Any] = field(default_factory=dict)
    """Literal arguments. A required argument left out comes from a needed step's output field of
    the same name."""
    needs: tuple[str, ...] = ()
    why: str = ""
    """The planner's reason for the step (shown to the approver)."""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "skill": self.skill, "args": dict(self.args), "needs": list(self.needs)}
        if self.why:
            d["why"] = self.why
        return d


@dataclass(frozen=True, kw_only=True)
class Plan:
    """Steps in order, with why the plan is what it is."""

    goal: str
    steps: tuple[PlanStep, ...]
    reason: str = ""
    kept: Mapping[str, str] = field(default_factory=dict)
    """Steps of an earlier plan that finished and are kept, id -> skill (a replan plans only the rest)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "goal": self.goal,
            "reason": self.reason,
            "kept": dict(self.kept),
            "steps": [s.to_dict() for s in self.steps],
        }

    @property
    def digest(self) -> str:
        """A short hash of the plan: its version when it runs."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @classmethod
    def from_data(cls, data: Any, *, goal: str, reason: str = "", kept: Mapping[str, str] | None = None) -> Plan:
        """A plan from a planner's JSON (``{"steps": [{"id", "skill", "args", "needs"}]}``).

        Raises :class:`ConfigError` naming the field when the shape is wrong; meaning (skills, types,
        cycles) is checked by :func:`~podium.goals.validate_plan`."""
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise ConfigError(f"the plan is not JSON: {exc}") from None
        if not isinstance(data, Mapping) or not isinstance(data.get("steps"), list):
            raise ConfigError('a plan is a JSON object with a "steps" list')
        extra = set(data) - {"steps", "reason", "goal", "kept"}
        if extra:
            raise ConfigError(
                f"a plan has only steps and reason; it cannot set {', '.join(sorted(extra))} "
                "(budgets, roles and policies come from the caller, never from the plan)"
            )
        steps = []
        for i, raw in enumerate(data["steps"]):
            where = f"steps[{i}]"
            if not isinstance(raw, Mapping):
                raise ConfigError(f"{where} is not an object")
            bad = set(raw) - {"id", "skill", "args", "needs", "why"}
            if bad:
                raise ConfigError(f"{where} has unknown field(s) {', '.join(sorted(bad))}")
            sid, skill = raw.get("id"), raw.get("skill")
            if not isinstance(sid, str) or not isinstance(skill, str):
                raise ConfigError(f"{where} needs an id and a skill (strings)")
            args = raw.get("args") or {}
            needs = raw.get("needs") or []
            if not isinstance(args, Mapping):
                raise ConfigError(f"{where}.args is not an object")
            if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
                raise ConfigError(f"{where}.needs is not a list of step ids")
            steps.append(PlanStep(id=sid, skill=skill, args=dict(args), needs=tuple(needs), why=str(raw.get("why") or "")))
        return cls(goal=goal, steps=tuple(steps), reason=reason or str(data.get("reason") or ""), kept=dict(kept or {}))

    def graph(self, status: Mapping[str, str] | None = None) -> str:
        """The plan as a text graph, layer by layer, each step with what it needs."""
        status = status or {}
        done: set[str] = set(self.kept)
        lines = [f"goal: {self.goal}"]
        if self.reason:
            lines.append(f"why:  {self.reason}")
        for k, sk in self.kept.items():
            lines.append(f"  [kept] {k}: {sk} (finished earlier)")
        remaining = list(self.steps)
        layer = 0
        while remaining:
            ready = [s for s in remaining if all(n in done for n in s.needs)] or remaining[:1]
            layer += 1
            for s in ready:
                mark = f" [{status[s.id]}]" if s.id in status else ""
                after = f"  <- {', '.join(s.needs)}" if s.needs else ""
                args = json.dumps(dict(s.args), sort_keys=True, default=str)
                lines.append(f"  {layer}. {s.id}: {s.skill} {args}{after}{mark}")
                if s.why:
                    lines.append(f"       why: {s.why}")
            done.update(s.id for s in ready)
            remaining = [s for s in remaining if s not in ready]
        return "\n".join(lines)


def to_yaml(plan: Plan, skills: Any, *, name: str) -> str:
    """The plan as a Podium workflow file: one step per plan step (``uses: <skill>``), kept steps as
    ``uses: kept`` reading the run input, missing arguments wired from needed steps' outputs."""
    import yaml

    steps: list[dict[str, Any]] = []
    for k in plan.kept:
        steps.append({"id": k, "uses": "kept", "with": {"value": f"{{{{ input.kept.{k} }}}}"}})
    by_id = {s.id: s for s in plan.steps}
    for s in plan.steps:
        skill = skills.get(s.skill)
        args: dict[str, Any] = dict(s.args)
        if skill is not None:
            for name_ in skill.required:
                if name_ not in args:
                    src = producer(name_, s, by_id, skills, plan.kept)
                    if src is not None:
                        args[name_] = f"{{{{ steps.{src}.output.{name_} }}}}"
        step: dict[str, Any] = {"id": s.id, "uses": s.skill, "with": args}
        if s.needs:
            step["needs"] = list(s.needs)
        steps.append(step)
    doc = {
        "name": name,
        "version": plan.digest,
        "description": f"plan for: {plan.goal}"[:200],
        "steps": steps,
    }
    return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


def producer(
    field_: str, step: PlanStep, by_id: Mapping[str, PlanStep], skills: Any, kept: Mapping[str, str]
) -> str | None:
    """The nearest needed step (depth first through ``needs``) whose output has ``field_``."""
    seen: set[str] = set()
    stack = list(reversed(step.needs))
    while stack:
        sid = stack.pop()
        if sid in seen:
            continue
        seen.add(sid)
        other = by_id.get(sid)
        sk = skills.get(other.skill if other is not None else kept.get(sid, ""))
        if sk is not None and field_ in sk.produces:
            return sid
        if other is not None:
            stack.extend(reversed(other.needs))
    return None
