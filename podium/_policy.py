"""Per-workflow policies: which tools and model providers a workflow's steps may use, and token
and cost budgets per run. Enforced at call time by the model and tool layer (``podium.ai``), so a
tool the policy forbids is refused even when a model asks for it; refusals are audited."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ._errors import ConfigError, NonRetryableError

if TYPE_CHECKING:
    from ._context import StepContext

POLICIES = "policies"


@dataclass(kw_only=True)
class Policy:
    """What a workflow (or, under the name ``*``, every workflow) may use."""

    allowed_tools: list[str] | None = None
    """Tool names its steps and agents may call (None: any)."""
    allowed_providers: list[str] | None = None
    """Model providers it may call, e.g. ``["local"]`` to keep data on this machine (None: any)."""
    max_run_tokens: int | None = None
    """Tokens (in + out) one run may spend on model calls."""
    max_run_cost: float | None = None
    """US dollars one run may spend on model calls."""
    on_exceed: str = "stop"
    """``stop`` (the step fails) or ``approval`` (a person may let the run go on)."""

    def __post_init__(self) -> None:
        if self.on_exceed not in ("stop", "approval"):
            raise ConfigError(f"policy on_exceed must be 'stop' or 'approval', got {self.on_exceed!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Policy:
        return cls(**json.loads(text))


class PolicyViolation(NonRetryableError):
    """A call the workflow's policy does not allow (a tool, a provider, a budget)."""


def _scope(ctx: StepContext | None) -> tuple[Any, Policy | None]:
    if ctx is None:
        return None, None
    ex = ctx._executor
    return ex, ex.client.policy_for(ex.wf.name)


async def check_tool(ctx: StepContext | None, tool: str) -> None:
    """Refuse (and audit) a tool call the policy does not allow."""
    ex, policy = _scope(ctx)
    if policy is None or policy.allowed_tools is None or tool in policy.allowed_tools:
        return
    await ex.client._audit("policy.refuse", ex.run_id, actor="engine", tool=tool, step=ctx.step_id if ctx else None)
    raise PolicyViolation(
        f"workflow {ex.wf.name!r} may not call tool {tool!r}; its policy allows: {', '.join(policy.allowed_tools) or 'none'}"
    )


async def check_model(ctx: StepContext | None, providers: list[str]) -> None:
    """Refuse a model call to a provider the policy or a kill switch forbids, or over budget."""
    ex, policy = _scope(ctx)
    if ex is None:
        return
    for provider in providers:
        off = ex.client.switched_off(ex.wf.name, provider=provider)
        if off is not None:
            await ex.client._audit("policy.refuse", ex.run_id, actor="engine", provider=provider, reason="kill switch")
            raise PolicyViolation(f"provider {provider!r} is switched off ({off.get('reason') or 'no reason given'})")
        if policy is not None and policy.allowed_providers is not None and provider not in policy.allowed_providers:
            await ex.client._audit("policy.refuse", ex.run_id, actor="engine", provider=provider)
            raise PolicyViolation(
                f"workflow {ex.wf.name!r} may not call provider {provider!r}; its policy allows: "
                f"{', '.join(policy.allowed_providers) or 'none'}"
            )
    if policy is None or ex.budget_waived:
        return
    over = []
    if policy.max_run_tokens is not None and ex.usage_tokens >= policy.max_run_tokens:
        over.append(f"{ex.usage_tokens} tokens of {policy.max_run_tokens}")
    if policy.max_run_cost is not None and ex.usage_cost >= policy.max_run_cost:
        over.append(f"${ex.usage_cost:.4f} of ${policy.max_run_cost:.4f}")
    if not over:
        return
    await ex.client._audit("policy.budget", ex.run_id, actor="engine", spent=over, on_exceed=policy.on_exceed)
    if policy.on_exceed == "approval" and ctx is not None:
        decision = await ctx.approval(
            {"spent": over}, title=f"run budget reached ({'; '.join(over)}): let it continue?", name="approval:budget"
        )
        if decision.get("approved"):
            ex.budget_waived = True
            return
    raise PolicyViolation(f"run {ex.run_id} reached its budget ({'; '.join(over)}); raise it with podium policy set")


def account(ctx: StepContext | None, usage: Any) -> None:
    """Add a model call's usage to its run's running totals (live and replayed calls alike)."""
    if ctx is None or usage is None:
        return
    ex = ctx._executor
    ex.usage_tokens += int(getattr(usage, "input_tokens", 0) or 0) + int(getattr(usage, "output_tokens", 0) or 0)
    ex.usage_cost += float(getattr(usage, "cost", 0.0) or 0.0)
