"""Skills: what a planner may put in a plan, each with typed input and output schemas.

A *skill* is a plannable capability: a specialist (a Python function or an :class:`~podium.ai.Agent`),
a workflow, an operation of a connector, or a tool the admin registered in the security registry
(``podium tools add``). The security registry (:mod:`podium.governance.capabilities`) stays the
source of truth for what plans may *reach*: a tool skill names an entry of it, and a plan using a
tool that is not registered there is refused when the plan is validated.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..tools._control import CONTROL_WORDS, is_control_name

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
KINDS = ("specialist", "workflow", "connector", "tool")

#: Skills are refused when their name or target names a control power (approvals, policy, users,
#: kill switches, budgets): those stay with people.
__all__ = ["CONTROL_WORDS", "Skill", "Skills", "is_control_name", "load_skills"]


@dataclass(frozen=True, kw_only=True)
class Skill:
    """One thing a plan may do, by ``name``."""

    name: str
    """Lowercase letters, digits and ``_`` (it is also the step kind the plan compiles to)."""
    description: str
    """What it does; the planner reads it."""
    kind: str = "specialist"
    """``specialist``, ``workflow``, ``connector`` or ``tool``."""
    input: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    """JSON Schema (an object) of its arguments. A required argument a plan does not give is taken
    from the output field of the same name of a step it needs (type-checked)."""
    output: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    """JSON Schema (an object) of what it returns."""
    cost: float = 0.0
    """Estimated cost of one call, USD (the plan's estimate is the sum)."""
    latency: float = 1.0
    """Estimated seconds of one call."""
    roles: tuple[str, ...] = ()
    """Roles allowed to use it; empty: any role."""
    fn: Callable[..., Any] | None = None
    """The specialist: called with the arguments as keywords (and ``ctx`` if it takes one), or an
    object with ``async run(ctx, input)`` (an :class:`~podium.ai.Agent`)."""
    target: str = ""
    """For ``tool``: the security registry's name; ``connector``: ``NAME.OPERATION``; ``workflow``:
    the workflow name."""
    workflow: Any = None
    """For ``workflow`` skills: the :class:`~podium.Workflow` run as a child run."""
    keywords: tuple[str, ...] = ()
    """Words of a goal that call for it (the rule-based planner reads them)."""
    fallback: str | None = None
    """A skill to use instead when this one fails (the rule-based planner's replan)."""
    min_confidence: float | None = None
    """An output whose ``confidence`` is below this counts as a failure (the rest is re-planned)."""
    tags: tuple[str, ...] = ()
    """Free labels: ``write`` marks a skill that changes something outside (approval by policy)."""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(
                f"skill name {self.name!r} is not valid: use lowercase letters, digits and '_', starting with "
                "a letter (at most 48 characters)"
            )
        if self.kind not in KINDS:
            raise ConfigError(f"skill {self.name!r}: kind {self.kind!r} is unknown; use one of {', '.join(KINDS)}")
        if is_control_name(self.name) or is_control_name(self.target):
            raise ConfigError(
                f"skill {self.name!r} would give planners a control power (approvals, policy, users, kill "
                "switches, budgets); those stay with people: use the CLI, HTTP API or dashboard"
            )
        for what in ("input", "output"):
            schema = getattr(self, what)
            if not isinstance(schema, Mapping) or schema.get("type", "object") != "object":
                raise ConfigError(f"skill {self.name!r}: {what} must be an object JSON Schema (type: object)")
        if self.kind == "specialist" and self.fn is None:
            raise ConfigError(f"skill {self.name!r}: a specialist needs fn= (a function or an Agent)")
        if self.kind in ("tool", "connector") and not self.target:
            raise ConfigError(f"skill {self.name!r}: a {self.kind} skill needs target=")
        if self.kind == "connector" and "." not in self.target:
            raise ConfigError(f"skill {self.name!r}: target must be CONNECTOR.OPERATION, not {self.target!r}")

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(self.input.get("required", ()))

    @property
    def properties(self) -> Mapping[str, Any]:
        return self.input.get("properties", {}) or {}

    @property
    def produces(self) -> Mapping[str, Any]:
        return self.output.get("properties", {}) or {}

    def allowed(self, roles: Iterable[str] | None) -> bool:
        """Whether a caller holding ``roles`` may use it (None: every role, the local user)."""
        return not self.roles or roles is None or bool(set(self.roles) & set(roles))

    def info(self) -> dict[str, Any]:
        """JSON view (what ``podium capabilities list --json`` prints)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "input": dict(self.input),
            "output": dict(self.output),
            "cost": self.cost,
            "latency": self.latency,
            "roles": list(self.roles),
            "target": self.target,
            "tags": list(self.tags),
        }


class Skills:
    """The registry of skills a planner may use: ``skills = Skills([Skill(...), ...])``."""

    def __init__(self, skills: Iterable[Skill] = (), *, name: str = "skills") -> None:
        self.name = name
        self._skills: dict[str, Skill] = {}
        for s in skills:
            self.add(s)

    def add(self, skill: Skill) -> Skill:
        if skill.name in self._skills:
            raise ConfigError(f"skill {skill.name!r} is registered twice; give one another name")
        self._skills[skill.name] = skill
        return skill

    def specialist(
        self, name: str, description: str, *, input: Mapping[str, Any], output: Mapping[str, Any], **kw: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a function as a specialist skill (a decorator)."""

        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.add(Skill(name=name, description=description, input=input, output=output, fn=fn, **kw))
            return fn

        return deco

    def get(self, name: str) -> Skill | None:
        return self._skills.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._skills

    def __iter__(self) -> Iterator[Skill]:
        return iter(self._skills.values())

    def __len__(self) -> int:
        return len(self._skills)

    def names(self) -> list[str]:
        return list(self._skills)

    def usable(self, roles: Sequence[str] | None) -> list[Skill]:
        """The skills a caller holding ``roles`` may use (what a planner is shown; None: every role)."""
        return [s for s in self._skills.values() if s.allowed(roles)]

    def catalogue(self, roles: Sequence[str] | None = None) -> str:
        """One line per usable skill: what a planner's prompt lists."""
        lines = []
        for s in self.usable(roles):
            args = ", ".join(
                f"{k}{'' if k in s.required else '?'}: {v.get('type', 'any')}" for k, v in s.properties.items()
            )
            outs = ", ".join(s.produces)
            lines.append(f"- {s.name}({args}) -> {{{outs}}}: {s.description}")
        return "\n".join(lines)


def load_skills(ref: str) -> Skills:
    """The :class:`Skills` at ``module:attribute`` (a registry, or a function returning one)."""
    import importlib

    module, _, attr = ref.partition(":")
    if not module or not attr:
        raise ConfigError(f"{ref!r} does not name a skill registry; use MODULE:ATTRIBUTE, e.g. examples.margins:skills")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load the skill registry {ref!r}: {exc}") from None
    if callable(obj) and not isinstance(obj, Skills):
        obj = obj()
    if not isinstance(obj, Skills):
        raise ConfigError(f"{ref!r} is a {type(obj).__name__}, not a podium.goals.Skills registry")
    return obj


async def call_specialist(skill: Skill, ctx: Any, args: dict[str, Any]) -> Any:
    """Run a specialist with exactly its arguments (its slice of the context, nothing else)."""
    fn = skill.fn
    run = getattr(fn, "run", None)
    if run is not None and not inspect.isfunction(fn):  # an Agent: the arguments are its input
        result = await run(ctx, json.dumps(args, sort_keys=True))
        out = result.output
        return out if isinstance(out, dict) else {"answer": out}
    assert fn is not None
    kwargs = dict(args)
    if "ctx" in inspect.signature(fn).parameters:
        kwargs["ctx"] = ctx
    if inspect.iscoroutinefunction(fn):
        return await fn(**kwargs)
    import asyncio

    return await asyncio.to_thread(fn, **kwargs)
