"""A step's :class:`~podium.Escalate`: a person decides when the step's output is not confident."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..errors import NonRetryableError

if TYPE_CHECKING:
    from .context import StepContext
    from .workflow import Escalate

_MISSING = object()


def confidence_of(value: Any, field: str) -> Any:
    """The confidence held in ``value`` at ``field`` (attribute or key, dotted), or _MISSING."""
    for part in field.split("."):
        value = value.get(part, _MISSING) if isinstance(value, dict) else getattr(value, part, _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


async def escalate(ctx: StepContext, rule: Escalate, value: Any) -> Any:
    confidence = confidence_of(value, rule.field)
    if confidence is _MISSING or isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise NonRetryableError(
            f"step {ctx.step_id!r} escalates below a confidence of {rule.below}, but its output "
            f"({type(value).__name__}) has no number at {rule.field!r}; return a value with that field, "
            f"or set Escalate(field=...)"
        )
    # A confidence is a probability: one outside [0, 1] (inf, 5, a model's 'Infinity') says nothing about how sure
    # the step is, and would pass every threshold, so a person sees it (NaN fails `>=`, and is asked about too).
    probability = 0 <= confidence <= 1
    if probability and confidence >= rule.below:
        return value
    default = {"approved": rule.on_timeout == "accept", "by": "sla", "comment": "no decision in time"}
    from .. import _serde
    from ..governance.enforcement import asked_about, refused_by

    shown = json.loads(_serde.dumps(value))  # what the approver sees and may edit
    asked = {"output": shown, "confidence": confidence}
    decision = await ctx.approval(
        asked,
        title=rule.title
        or (
            f"step {ctx.step_id!r} is only {confidence:.0%} confident (below {rule.below:.0%}): accept?"
            if probability
            else f"step {ctx.step_id!r} gave a confidence of {confidence} at {rule.field!r}, not a number between 0 and 1: accept?"
        ),
        role=rule.role,
        timeout=rule.timeout,
        default=default,
        # named after what is decided: another output is another question (the output is logged
        # before it is asked, so a resumed step asks the same one, and is answered)
        name=f"approval:escalate:{ctx.step_id}:{ctx.iteration}:{ctx.index}:{asked_about(ctx.step_id, asked)}",
    )
    if not decision.get("approved"):
        raise NonRetryableError(
            f"step {ctx.step_id!r}: confidence {confidence:.2f} is below {rule.below} and "
            + refused_by(decision, "rejected the output")
        )
    payload = decision.get("payload")
    if decision.get("edited") and isinstance(payload, dict) and "output" in payload:
        # The approver edited the output as shown (tagged JSON): decode it here, on purpose, into the
        # step's type. Stored data never decodes its own tags (podium._serde); this does, for a person
        # allowed to decide, and still builds only a dataclass or pydantic model of a loaded module.
        edited = payload["output"]
        try:
            return _serde.loads(json.dumps(edited))
        except TypeError:  # decoded already (a decision stored by an earlier version)
            return edited
    return value
