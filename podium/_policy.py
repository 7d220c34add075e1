"""Per-workflow policies: which tools and model providers a workflow's steps may use; token and
cost budgets per run, per day and per entity; PII redaction of prompts, outputs and stored payloads;
and validators a model's output must pass (banned content, tone). Enforced at call time by the model
and tool layer (``podium.ai``), so a tool the policy forbids is refused even when a model asks for
it; refusals and violations are audited."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from ._errors import ConfigError, NonRetryableError

if TYPE_CHECKING:
    from ._context import StepContext

POLICIES = "policies"
SPEND = "spend"  # "day:WORKFLOW:YYYY-MM-DD:tokens|cost" and "entity:WORKFLOW:ENTITY:YYYY-MM-DD:..." -> total
REDACT_TARGETS = ("prompts", "outputs", "payloads")


@dataclass(kw_only=True)
class Policy:
    """What a workflow (or, under the name ``*``, every workflow) may use."""

    allowed_tools: list[str] | None = None
    """Tool names its steps and agents may call (None: any)."""
    allowed_providers: list[str] | None = None
    """Model providers it may call, e.g. ``["local"]`` to keep data on this machine (None: any)."""
    approve_tools: list[str] = field(default_factory=list)
    """Tools a person must approve before each call (the approver may edit the arguments)."""
    max_run_tokens: int | None = None
    """Tokens (in + out) one run may spend on model calls."""
    max_run_cost: float | None = None
    """US dollars one run may spend on model calls."""
    max_daily_tokens: int | None = None
    """Tokens all of the workflow's runs together may spend per UTC day."""
    max_daily_cost: float | None = None
    """US dollars all of the workflow's runs together may spend per UTC day."""
    max_entity_tokens: int | None = None
    """Tokens the runs for one entity (a customer, an account) may spend per UTC day."""
    max_entity_cost: float | None = None
    """US dollars the runs for one entity may spend per UTC day."""
    entity_field: str | None = None
    """Which field of the run's input names its entity (``customer_id``; dotted paths reach into
    nested objects). None: the run's tenant."""
    on_exceed: str = "stop"
    """``stop`` (the step fails) or ``approval`` (a person may let the run go on)."""
    redact: list[str] = field(default_factory=list)
    """Where PII is replaced by placeholders (``[EMAIL]``, ``[CARD]``...): ``prompts`` (before they
    reach any model), ``outputs`` (model answers), ``payloads`` (run inputs, step outputs and call
    results, before they are stored and handed on)."""
    pii_local_only: bool = False
    """A prompt that holds PII may only go to a local model (provider ``local``)."""
    banned: list[str] = field(default_factory=list)
    """Words, phrases or ``re:`` regular expressions a model's answer must not contain."""
    tone: list[str] = field(default_factory=list)
    """Tones a model's answer must not have, e.g. ``["hostile"]`` (see :mod:`podium.validators`)."""
    tone_threshold: float = 0.6
    """Confidence at which a forbidden tone counts."""
    on_violation: str = "block"
    """When an answer fails a validator: ``block`` (the step fails) or ``approval`` (a person may
    pass it, or edit it)."""

    def __post_init__(self) -> None:
        if self.on_exceed not in ("stop", "approval"):
            raise ConfigError(f"policy on_exceed must be 'stop' or 'approval', got {self.on_exceed!r}")
        if self.on_violation not in ("block", "approval"):
            raise ConfigError(f"policy on_violation must be 'block' or 'approval', got {self.on_violation!r}")
        for name in ("max_run_tokens", "max_run_cost", "max_daily_tokens", "max_daily_cost", "max_entity_tokens", "max_entity_cost"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or value < 0
            ):
                raise ConfigError(f"policy {name} must be a finite number >= 0 (or null for no limit), got {value!r}")
        if not 0 <= self.tone_threshold <= 1:
            raise ConfigError(f"policy tone_threshold must be between 0 and 1, got {self.tone_threshold!r}")
        bad = [t for t in self.redact if t not in REDACT_TARGETS]
        if bad:
            raise ConfigError(f"policy redact: unknown target(s) {bad}; use any of {list(REDACT_TARGETS)}")
        if self.tone:
            from .validators import TONES

            unknown = [t for t in self.tone if t not in TONES]
            if unknown:
                raise ConfigError(f"policy tone: unknown tone(s) {unknown}; known tones: {sorted(TONES)}")
        for pattern in self.banned:
            if pattern.startswith("re:"):
                import re

                try:
                    re.compile(pattern[3:])
                except re.error as exc:
                    raise ConfigError(f"policy banned: {pattern!r} is not a valid regular expression: {exc}") from None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Policy:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Policy:
        """A policy from a mapping (a JSON body, a YAML file); unknown fields are a clear error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            import difflib

            hints = [f"{u!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(u, known, 1)) else repr(u) for u in unknown]
            raise ConfigError(f"unknown policy field(s) {', '.join(hints)}; fields are: {', '.join(sorted(known))}")
        data = dict(data)
        for name in ("allowed_tools", "allowed_providers", "approve_tools", "redact", "banned", "tone"):
            value = data.get(name)
            if value is None and name in data and name not in ("allowed_tools", "allowed_providers"):
                data[name] = []  # an empty YAML key: none
            elif value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
                raise ConfigError(f"policy {name} must be a list of strings, e.g. {name}: [a, b]; got {value!r}")
        for name, kind in (("pii_local_only", bool), ("tone_threshold", (int, float)), ("entity_field", str),
                           ("on_exceed", str), ("on_violation", str)):
            value = data.get(name)
            if name in data and value is None and name in ("pii_local_only", "tone_threshold", "on_exceed", "on_violation"):
                del data[name]  # null: the default
            elif value is not None and (not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))):
                raise ConfigError(f"policy {name} has the wrong type: got {value!r}")
        return cls(**data)

    @property
    def has_output_checks(self) -> bool:
        return bool(self.banned or self.tone)

    @property
    def has_spend_limits(self) -> bool:
        return any(
            v is not None
            for v in (self.max_daily_tokens, self.max_daily_cost, self.max_entity_tokens, self.max_entity_cost)
        )


class PolicyViolation(NonRetryableError):
    """A call the workflow's policy does not allow (a tool, a provider, a budget)."""


def _scope(ctx: StepContext | None) -> tuple[Any, Policy | None]:
    if ctx is None:
        return None, None
    ex = ctx._executor
    return ex, ex.client.policy_for(ex.wf.name)


def _policies(ctx: StepContext, agent: str | None) -> list[tuple[str, Policy]]:
    """The policies over a call: the workflow's (or ``*``), and the agent's (``agent:NAME``)."""
    ex = ctx._executor
    out = []
    policy = ex.client.policy_for(ex.wf.name)
    if policy is not None:
        out.append((f"workflow {ex.wf.name!r}", policy))
    if agent is not None and ex.client._policies:
        agent_policy = ex.client._policies.get(f"agent:{agent}")
        if agent_policy is not None:
            out.append((f"agent {agent!r}", agent_policy))
    return out


async def check_tool(
    ctx: StepContext | None,
    tool: str,
    arguments: dict[str, Any] | None = None,
    *,
    agent: str | None = None,
    call: str | None = None,
) -> dict[str, Any]:
    """Refuse (and audit) a tool call the policy does not allow; ask a person first for a tool the
    policy says needs approval. Returns the arguments to call it with (an approver may edit them)."""
    args = dict(arguments or {})
    if ctx is None:
        return args
    ex = ctx._executor
    scoped = _policies(ctx, agent)
    for who, policy in scoped:
        if policy.allowed_tools is not None and tool not in policy.allowed_tools:
            await ex.client._audit("policy.refuse", ex.run_id, actor="engine", tool=tool, step=ctx.step_id, agent=agent)
            raise PolicyViolation(
                f"{who} may not call tool {tool!r}; its policy allows: {', '.join(policy.allowed_tools) or 'none'}"
            )
    if not any(tool in policy.approve_tools for _, policy in scoped):
        return args
    # Named after the durable call it guards, so a resumed step asks the same question again.
    label = ctx._next_label(call or f"tool.{tool}")
    decision = await ctx.approval(
        {"tool": tool, "arguments": args},
        title=f"call tool {tool!r} in step {ctx.step_id!r}?",
        name=f"approval:tool:{ctx.step_id}:{ctx.iteration}:{ctx.index}:{label}",
    )
    if not decision.get("approved"):
        comment = decision.get("comment")
        raise PolicyViolation(
            f"{decision.get('by') or 'the approver'} did not approve calling tool {tool!r}"
            + (f": {comment}" if comment else "")
        )
    edited = decision.get("payload")
    if decision.get("edited"):
        if not (isinstance(edited, dict) and isinstance(edited.get("arguments"), dict)):
            raise PolicyViolation(
                f"the approver's edit of the call to tool {tool!r} must look like "
                f'{{"tool": ..., "arguments": {{...}}}}, got {str(edited)[:200]}; the tool was not called'
            )
        return dict(edited["arguments"])
    return args


async def check_model(ctx: StepContext | None, providers: list[str], *, agent: str | None = None) -> None:
    """Refuse a model call to a provider the policy or a kill switch forbids, or over budget."""
    ex, policy = _scope(ctx)
    if ex is None or ctx is None:
        return
    scoped = _policies(ctx, agent) if (policy is not None or agent is not None) else []
    for provider in providers:
        off = ex.client.switched_off(ex.wf.name, provider=provider)
        if off is not None:
            await ex.client._audit("policy.refuse", ex.run_id, actor="engine", provider=provider, reason="kill switch")
            raise PolicyViolation(f"provider {provider!r} is switched off ({off.get('reason') or 'no reason given'})")
        for who, p in scoped:
            if p.allowed_providers is not None and provider not in p.allowed_providers:
                await ex.client._audit("policy.refuse", ex.run_id, actor="engine", provider=provider, agent=agent)
                raise PolicyViolation(
                    f"{who} may not call provider {provider!r}; its policy allows: "
                    f"{', '.join(p.allowed_providers) or 'none'}"
                )
    if policy is None or ex.budget_waived:
        return
    if not ex.usage_loaded:
        _load_usage(ex)
    over = []
    if policy.max_run_tokens is not None and ex.usage_tokens >= policy.max_run_tokens:
        over.append(f"{ex.usage_tokens} tokens of {policy.max_run_tokens} for the run")
    if policy.max_run_cost is not None and ex.usage_cost >= policy.max_run_cost:
        over.append(f"${ex.usage_cost:.4f} of ${policy.max_run_cost:.4f} for the run")
    if policy.has_spend_limits:
        over.extend(await _spend_over(ex, policy))
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
        comment = decision.get("comment")
        raise PolicyViolation(
            f"run {ex.run_id} of {ex.wf.name!r} reached a budget of its policy ({'; '.join(over)}) and "
            f"{decision.get('by') or 'the approver'} did not let it go on" + (f": {comment}" if comment else "")
        )
    raise PolicyViolation(
        f"run {ex.run_id} of {ex.wf.name!r} reached a budget of its policy ({'; '.join(over)}); raise it with "
        f"'podium policy set {ex.wf.name} --merge ...'"
    )


def _day(now: float | None = None) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() if now is None else now))


def entity_of(ex: Any, policy: Policy) -> str | None:
    """The entity a run is for: ``policy.entity_field`` of its input, or its tenant."""
    if policy.entity_field is None:
        return ex.run.tenant
    value: Any = ex.input
    for part in policy.entity_field.split("."):
        value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
        if value is None:
            return None
    return str(value)


def _spend_keys(ex: Any, policy: Policy) -> dict[str, str]:
    day = _day()
    keys = {"day": f"day:{ex.wf.name}:{day}"}
    entity = entity_of(ex, policy)
    if entity is not None:
        keys["entity"] = f"entity:{ex.wf.name}:{entity}:{day}"
    return keys


async def _spend_over(ex: Any, policy: Policy) -> list[str]:
    """Which daily and per-entity budgets the workflow has spent (totals shared by every process)."""
    keys = _spend_keys(ex, policy)
    over = []
    limits = {
        "day": (policy.max_daily_tokens, policy.max_daily_cost, "today"),
        "entity": (policy.max_entity_tokens, policy.max_entity_cost, f"today for entity {entity_of(ex, policy)!r}"),
    }
    for scope, key in keys.items():
        max_tokens, max_cost, what = limits[scope]
        if max_tokens is not None:
            spent = float(await ex.store.kv_get(SPEND, f"{key}:tokens") or 0)
            if spent >= max_tokens:
                over.append(f"{int(spent)} tokens of {max_tokens} {what}")
        if max_cost is not None:
            spent = float(await ex.store.kv_get(SPEND, f"{key}:cost") or 0)
            if spent >= max_cost:
                over.append(f"${spent:.4f} of ${max_cost:.4f} {what}")
    return over


async def charge(ctx: StepContext | None, usage: Any) -> None:
    """Add a live model call's usage to the day's and the entity's totals (atomic in the store, so
    every worker counts against the same budget). Replayed calls are not charged again."""
    ex, policy = _scope(ctx)
    if policy is None or usage is None or not policy.has_spend_limits:
        return
    tokens = int(getattr(usage, "input_tokens", 0) or 0) + int(getattr(usage, "output_tokens", 0) or 0)
    cost = float(getattr(usage, "cost", 0.0) or 0.0)
    for key in _spend_keys(ex, policy).values():
        if tokens:
            await ex.store.kv_incr(SPEND, f"{key}:tokens", tokens)
        if cost:
            await ex.store.kv_incr(SPEND, f"{key}:cost", cost)


async def check_agent(ctx: StepContext | None, agent: str) -> None:
    """Honour an ``agent`` kill switch between an agent's iterations: ``pause`` parks the run (it
    goes on where it stopped once the switch is cleared); ``cancel`` fails the step."""
    if ctx is None:
        return
    ex = ctx._executor
    off = ex.client._switches.get(f"agent:{agent}") if ex.client._switches else None
    if off is None:
        return
    if off.get("mode") == "cancel":
        await audit(ctx, "policy.refuse", agent=agent, reason="kill switch")
        raise PolicyViolation(
            f"agent {agent!r} is switched off ({off.get('reason') or 'no reason given'}, by {off.get('by')})"
        )
    from ._errors import _Suspend

    raise _Suspend("__killswitch__", None)


def policy_of(ctx: StepContext | None) -> Policy | None:
    """The policy that governs the run of ``ctx`` (None outside a run or when none is set)."""
    return _scope(ctx)[1]


async def audit(ctx: StepContext | None, action: str, **data: Any) -> None:
    """Record a decision made inside a step (a model call, a tool call, a route) in the audit log."""
    if ctx is None:
        return
    ex = ctx._executor
    await ex.client._audit(action, ex.run_id, actor="engine", workflow=ex.wf.name, step=ctx.step_id, **data)


def _load_usage(ex: Any) -> None:
    """The run's usage so far, from the calls its log holds (made before this engine took it up).
    Done before this engine's first live call, which :func:`account` adds itself."""
    from . import _serde

    ex.usage_loaded = True
    for status, data in ex.recorded.values():
        if status != "completed" or not data or '"input_tokens"' not in data:
            continue
        try:
            usage = getattr(_serde.loads(data).get("output"), "usage", None)
        except Exception:
            continue
        if usage is not None:
            ex.usage_tokens += int(getattr(usage, "input_tokens", 0) or 0) + int(getattr(usage, "output_tokens", 0) or 0)
            ex.usage_cost += float(getattr(usage, "cost", 0.0) or 0.0)


def account(ctx: StepContext | None, usage: Any) -> None:
    """Add a live model call's usage to its run's running totals."""
    if ctx is None or usage is None:
        return
    ex = ctx._executor
    if not ex.usage_loaded:  # not needed yet: _load_usage will find this call in the log
        return
    ex.usage_tokens += int(getattr(usage, "input_tokens", 0) or 0) + int(getattr(usage, "output_tokens", 0) or 0)
    ex.usage_cost += float(getattr(usage, "cost", 0.0) or 0.0)
