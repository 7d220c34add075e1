"""Running a plan: its steps as a Podium workflow (YAML compiled with one step kind per skill)."""

from __future__ import annotations

from typing import Any

from ..errors import NonRetryableError
from ..yaml import StepType, StepTypes, load_text
from ._plan import Plan, to_yaml
from ._skills import Skill, Skills, call_specialist


class LowConfidence(NonRetryableError):
    """A step's answer was below its confidence floor: the rest of the plan is re-planned."""


def _step_type(skill: Skill, floor: float) -> StepType:
    async def run(ctx: Any, **args: Any) -> Any:
        if skill.kind == "specialist":
            out = await call_specialist(skill, ctx, args)
        elif skill.kind == "workflow":
            out = await ctx.run_workflow(skill.workflow, args, name=skill.name)
        elif skill.kind == "connector":
            conn, _, op = skill.target.partition(".")
            out = await ctx.connector(conn).call(op, args)
        else:  # a tool of the security registry, looked up again when it runs
            from ..ai.yaml_steps import tool_step

            out = await tool_step.fn(ctx, arguments=args, name=skill.target)
        need = max(floor, skill.min_confidence or 0.0)
        conf = out.get("confidence") if isinstance(out, dict) else None
        if need and conf is not None:
            # What the step answered decides this, so anything but a probability fails the floor: NaN
            # compares false with it, inf and 7 pass it, text and booleans were not compared at all.
            number = isinstance(conf, int | float) and not isinstance(conf, bool)
            if not number or not 0 <= conf <= 1:
                raise LowConfidence(f"step {ctx.step_id!r} ({skill.name}) answered with confidence {conf!r}, which is "
                                    f"not a number between 0 and 1, where the floor is {need:.2f}")
            if conf < need:
                raise LowConfidence(f"step {ctx.step_id!r} ({skill.name}) answered with confidence {conf:.2f}, "
                                    f"below {need:.2f}")
        return out

    return StepType(
        name=skill.name,
        fn=run,
        args={**dict(skill.input), "additionalProperties": False},
        output=dict(skill.output),
        description=skill.description,
    )


async def _kept(value: Any = None) -> Any:
    """A step finished by an earlier plan: its output, as it was."""
    return value


def step_types(skills: Skills, floor: float = 0.0) -> StepTypes:
    """One step kind per skill, plus ``kept``; nothing else (no built-in kinds, no plug-ins)."""
    types = StepTypes(entry_points=False)
    types.add(StepType(name="kept", fn=_kept, args={"type": "object", "properties": {"value": {}}}))
    for sk in skills:
        types.add(_step_type(sk, floor))
    return types


def compile_plan(plan: Plan, skills: Skills, *, name: str, floor: float = 0.0) -> tuple[Any, str]:
    """The plan as a :class:`~podium.Workflow` (through Podium's YAML loader, with its checks) and
    the YAML text it was compiled from. Its version is the plan's digest."""
    text = to_yaml(plan, skills, name=name)
    wf = load_text(text, f"<plan {plan.digest}>", registry=step_types(skills, floor), base_dir=".")
    return wf, text
