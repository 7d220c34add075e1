"""What a caller allows a goal: budget, size, approvals, replans. The plan never sets any of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

APPROVE = ("always", "never", "cost", "skills")


@dataclass(frozen=True, kw_only=True)
class GoalPolicy:
    """Limits and approval rules of one goal, set by the caller (a plan cannot change them)."""

    max_cost: float = 1.0
    """Largest estimated cost of a plan, USD (sum of its steps' cost hints)."""
    max_steps: int = 12
    max_replans: int = 2
    """How many times the rest of a plan may be re-planned after a failure."""
    max_repairs: int = 2
    """How many times an invalid plan goes back to the planner with its problems."""
    approve: str = "skills"
    """When a person approves a plan before it runs: ``always``, ``never``, ``cost`` (above
    ``approve_over_cost``) or ``skills`` (when it uses a skill tagged or named in ``approve_skills``)."""
    approve_over_cost: float = 0.0
    approve_skills: tuple[str, ...] = ("write",)
    """Skill names or tags whose use needs approval (with ``approve="skills"``)."""
    approver_role: str | None = None
    """The role that must decide the plan's approval (None: anyone with approvals.decide)."""
    allowed_skills: tuple[str, ...] | None = None
    """Only these skills (None: every skill the caller's roles may use)."""
    min_confidence: float = 0.0
    """An output with a ``confidence`` below this (or below its skill's) is a failure: re-plan."""

    def __post_init__(self) -> None:
        if self.approve not in APPROVE:
            raise ValueError(f"approve={self.approve!r}: use one of {', '.join(APPROVE)}")

    def needs_approval(self, plan: Any, skills: Any, cost: float) -> str | None:
        """Why ``plan`` needs a person's approval, or None."""
        if self.approve == "always":
            return "policy: every plan is approved"
        if self.approve == "cost" and cost > self.approve_over_cost:
            return f"policy: estimated cost ${cost:.4f} is over ${self.approve_over_cost:.4f}"
        if self.approve == "skills":
            hits = sorted(
                {
                    s.skill
                    for s in plan.steps
                    if s.skill in self.approve_skills
                    or (skills.get(s.skill) is not None and set(skills.get(s.skill).tags) & set(self.approve_skills))
                }
            )
            if hits:
                return f"policy: the plan uses {', '.join(hits)}"
        return None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> GoalPolicy:
        data = dict(data or {})
        for key in ("approve_skills", "allowed_skills"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(**data)
