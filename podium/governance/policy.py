"""Per-workflow policies: which tools and model providers a workflow's steps may use; token and
cost budgets per run, per day and per entity; PII redaction of prompts, outputs and stored payloads;
and validators a model's output must pass (banned content, tone). This module holds policies as
data; :mod:`podium.governance.enforcement` enforces them at call time for the model and tool layer
(``podium.ai``), so a tool the policy forbids is refused even when a model asks for it; refusals and
violations are audited."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..errors import ConfigError, PolicyViolation
from ..records import UNDEPLOYED

POLICIES = "policies"
SPEND = "spend"  # "day:WORKFLOW:YYYY-MM-DD:tokens|cost" and "entity:WORKFLOW:ENTITY:YYYY-MM-DD:..." -> total
REDACT_TARGETS = ("prompts", "outputs", "payloads")
# allowed_connectors / approve_connectors: NAME or NAME.OPERATION (operations: podium.connectors._base)
_CONNECTOR_ENTRY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*(\.[A-Za-z][A-Za-z0-9_]{0,63})?$")

#: The tones a policy can ban, each with example sentences (the tone validator is trained on them).
TONES: dict[str, list[str]] = {
    "polite": [
        "Thank you for reaching out. I have looked into your order and it will arrive on Friday.",
        "I'm sorry for the trouble. Here is how we can fix this together.",
        "Happy to help! Your refund has been processed and should appear within five days.",
        "We appreciate your patience while we review your request.",
        "Could you please send us the invoice number so we can check the charge?",
        "Thanks for letting us know; I have passed your feedback to the team.",
        "Please find the summary of your account below. Let me know if anything is unclear.",
        "Good news: the issue has been resolved and your service is back to normal.",
    ],
    "neutral": [
        "The order was shipped on 12 March and is expected on 15 March.",
        "Invoice 4471 totals 320 euros and is due at the end of the month.",
        "The ticket is assigned to the billing team with priority medium.",
        "Churn risk for this account is 0.82, above the threshold of 0.8.",
        "The contract renews on 1 June for twelve months.",
        "Three items are out of stock; the rest will ship today.",
        "The summary lists the customer's last five interactions.",
        "Status: pending review. Next step: manager approval.",
    ],
    "hostile": [
        "That is a stupid question and you should know the answer already.",
        "Stop wasting my time with your pathetic complaints.",
        "You're an idiot if you think we'll refund you.",
        "Shut up and read the manual like everyone else.",
        "Nobody cares about your problem. Deal with it yourself.",
        "Your complaint is worthless and so are you.",
        "If you contact us again we will make you regret it.",
        "What a ridiculous, incompetent customer you are.",
    ],
    "dismissive": [
        "Whatever. Not our problem.",
        "We don't have time for this, try somewhere else.",
        "That's just how it is, nothing we can do, goodbye.",
        "Read the FAQ. We won't answer this.",
        "Your issue isn't important enough to look into.",
        "Can't help you. Don't ask again.",
        "Not going to bother checking that.",
        "Figure it out yourself.",
    ],
}


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
    """Tones a model's answer must not have, e.g. ``["hostile"]`` (see :mod:`podium.governance.validators`)."""
    tone_threshold: float = 0.6
    """Confidence at which a forbidden tone counts."""
    on_violation: str = "block"
    """When an answer fails a validator: ``block`` (the step fails) or ``approval`` (a person may
    pass it, or edit it)."""
    max_tool_calls: int | None = None
    """Tool calls one agent run (``Agent.run``) may make under this policy; the lowest of this and
    the agent's own ``max_tool_calls`` (default 32) holds. None: the agent's own."""
    allowed_connectors: list[str] | None = None
    """Connector operations its steps and agents may call: ``crm`` (every operation of connector
    ``crm``) or ``crm.updateContact`` (that one). None: any. It covers the messages a ``transact``
    records for the outbox relay too (each is a later call of its target)."""
    approve_connectors: list[str] = field(default_factory=list)
    """Connector operations (same forms) a person must approve before each call; the approver may
    edit the arguments, not the connector or operation."""

    def __post_init__(self) -> None:
        if self.on_exceed not in ("stop", "approval"):
            raise ConfigError(f"policy on_exceed must be 'stop' or 'approval', got {self.on_exceed!r}")
        if self.on_violation not in ("block", "approval"):
            raise ConfigError(f"policy on_violation must be 'block' or 'approval', got {self.on_violation!r}")
        bound = self.max_tool_calls
        if bound is not None and (not isinstance(bound, int) or isinstance(bound, bool) or bound < 0):
            raise ConfigError(f"policy max_tool_calls must be a whole number >= 0 (or null for the agent's own), got {bound!r}")
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
            unknown = [t for t in self.tone if t not in TONES]
            if unknown:
                raise ConfigError(f"policy tone: unknown tone(s) {unknown}; known tones: {sorted(TONES)}")
        for name in ("allowed_connectors", "approve_connectors"):
            for entry in getattr(self, name) or ():
                # An entry that matches no call would be silently inert: 'crm.*' in approve_connectors
                # would ask nobody. The connector name alone covers all of its operations.
                if not _CONNECTOR_ENTRY.match(entry):
                    hint = f"; {entry.partition('.')[0]!r} alone covers every operation" if "*" in entry else ""
                    raise ConfigError(
                        f"policy {name}: {entry!r} is not a connector name or NAME.OPERATION "
                        f"(e.g. crm or crm.updateContact; an operation is letters, digits and '_'){hint}"
                    )
        for pattern in self.banned:
            if pattern.startswith("re:"):
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
        lists = ("allowed_tools", "allowed_providers", "approve_tools", "redact", "banned", "tone",
                 "allowed_connectors", "approve_connectors")  # fmt: skip
        for name in lists:
            value = data.get(name)
            if value is None and name in data and name not in ("allowed_tools", "allowed_providers", "allowed_connectors"):
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

    def refuses_message(self, target: str, operation: str, *, approved: bool) -> tuple[str, str] | None:
        """What of this policy refuses the outbox relay's delivery of a message for
        ``target.operation`` now, as (policy field, why), or None: its target is not in
        ``allowed_connectors``, or ``approve_connectors`` names it and no person's approval
        (``approved``) is known (the relay cannot ask one). ``why`` follows the policy's name ("the
        policy of workflow 'x' ..."). The relay asks this, duck-typed, through the policies of
        :attr:`Governance.policy_cache`."""
        allowed = self.allowed_connectors
        if allowed is not None and not names_connector(allowed, target, operation):
            return "allowed_connectors", (
                f"does not allow '{target}.{operation}' (policy field allowed_connectors: {', '.join(allowed) or 'none'})"
            )
        if not approved and names_connector(self.approve_connectors, target, operation):
            return "approve_connectors", f"says a person approves '{target}.{operation}' (policy field approve_connectors)"
        return None

    @property
    def has_output_checks(self) -> bool:
        return bool(self.banned or self.tone)

    @property
    def has_spend_limits(self) -> bool:
        return any(
            v is not None
            for v in (self.max_daily_tokens, self.max_daily_cost, self.max_entity_tokens, self.max_entity_cost)
        )


AGENT_PREFIX = "agent:"
"""Policies and kill switches on agents are keyed ``agent:NAME``; no workflow may be named so."""


def workflow_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a workflow, or None: an ``agent:...`` name is an agent's policy key,
    so a workflow named so would be governed as that agent (or as every agent); ``undeployed:...``
    is how the outbox marks the messages of runs not deployed (:data:`UNDEPLOYED`)."""
    if name.startswith(AGENT_PREFIX):
        return (
            f"{name!r} names an agent's policy (agent:NAME), not a workflow; rename the workflow "
            f"(e.g. {name[len(AGENT_PREFIX):].strip('*') or 'my'}-workflow)"
        )
    if name.startswith(UNDEPLOYED):
        return (
            f"{name!r} starts with {UNDEPLOYED!r}, which marks the outbox messages of runs whose workflow "
            f"is not deployed; rename the workflow (e.g. {name[len(UNDEPLOYED):] or 'my-workflow'})"
        )
    return None


def undeployed(workflow: str, deploy: str) -> str:
    """Who a refusal names when the ``*`` default holds a run because its workflow is not the
    deployed one of its name (``deploy``: the command that deploys it)."""
    return (
        f"workflow {workflow!r} (this definition is not deployed, so under the default policy '*' as well as its own: any file "
        f"may call itself {workflow!r}; to run under its own policy alone, someone with workflows.deploy "
        f"deploys it: {deploy})"
    )


def over_call(
    policies: Mapping[str, Policy], workflow: str, agent: str | None, *, deploy: str | None = None
) -> list[tuple[str, Policy]]:
    """The policies over a call, as ``(who, policy)`` pairs: the workflow's (or ``*``), and the
    agent's (``agent:NAME``, or ``agent:*`` for an agent no policy names: an agent's name is written
    by whoever writes the workflow, so renaming it must not free it). Runs and the API's dry run
    (``GET /api/policies/{workflow}/decision``) both ask here.

    ``deploy`` (the command that deploys it) says the run's workflow is not the deployed one of its
    name (a store with users): any file may call itself so, so its name's policy only restricts it,
    and ``*`` holds it too (:mod:`podium.governance.bound`)."""
    out: list[tuple[str, Policy]] = []
    # ``agent:...`` keys are agents' policies: a workflow by such a name (refused when defined) is
    # under the default, never an agent's
    named = None if workflow.startswith(AGENT_PREFIX) else policies.get(workflow)
    default = policies.get("*")
    if named is not None:
        out.append((f"workflow {workflow!r}", named))
    if default is not None and named is None:
        out.append((f"workflow {workflow!r}", default))
    elif default is not None and deploy is not None:  # after its own: a refusal deploying cannot lift comes first
        out.append((undeployed(workflow, deploy), default))
    if agent is not None:
        named = policies.get(f"agent:{agent}")
        if named is not None:
            out.append((f"agent {agent!r}", named))
        elif policies.get("agent:*") is not None:
            out.append((f"agent {agent!r} (under the default for agents, agent:*)", policies["agent:*"]))
    return out


def tool_refusal(scoped: list[tuple[str, Policy]], tool: str) -> str | None:
    """Why the policies over a call (``(who, policy)`` pairs) refuse ``tool``, or None."""
    for who, policy in scoped:
        if policy.allowed_tools is not None and tool not in policy.allowed_tools:
            return f"{who} may not call tool {tool!r}; its policy allows: {', '.join(policy.allowed_tools) or 'none'}"
    return None


def names_connector(entries: list[str], connector: str, operation: str) -> bool:
    """Whether ``entries`` (``crm``, ``crm.updateContact``) cover ``operation`` of ``connector``."""
    return connector in entries or f"{connector}.{operation}" in entries


def connector_refusal(scoped: list[tuple[str, Policy]], connector: str, operation: str) -> str | None:
    """Why the policies over a call refuse ``operation`` of ``connector``, or None."""
    for who, policy in scoped:
        allowed = policy.allowed_connectors
        if allowed is not None and not names_connector(allowed, connector, operation):
            return (
                f"{who} may not call connector operation '{connector}.{operation}'; its policy allows: "
                f"{', '.join(allowed) or 'none'} (policy field allowed_connectors)"
            )
    return None


def provider_refusal(scoped: list[tuple[str, Policy]], provider: str) -> str | None:
    """Why the policies over a call refuse model provider ``provider``, or None."""
    for who, policy in scoped:
        if policy.allowed_providers is not None and provider not in policy.allowed_providers:
            return (
                f"{who} may not call provider {provider!r}; its policy allows: "
                f"{', '.join(policy.allowed_providers) or 'none'}"
            )
    return None


__all__ = ["POLICIES", "REDACT_TARGETS", "SPEND", "TONES", "Policy", "PolicyViolation"]


def check_switch(scope: str, name: str, mode: str, scopes: tuple[str, ...]) -> None:
    """Refuse a kill switch that would be stored but stop nothing (a ``ConfigError`` saying why)."""
    if scope not in scopes:
        raise ConfigError(f"kill switch scope {scope!r} is unknown; scopes are: {', '.join(scopes)}")
    if mode not in ("pause", "cancel"):
        raise ConfigError(f"kill switch mode must be 'pause' or 'cancel', got {mode!r}")
    if scope == "connector" and "." in name:  # switches are looked up by connector name only
        raise ConfigError(
            f"kill switch 'connector {name}': a connector switch names a whole system "
            f"(podium killswitch set connector {name.partition('.')[0]}); to stop one operation, "
            "leave it out of the policies' allowed_connectors (podium policy set WORKFLOW --allow-connector ...)"
        )


def switch_not_set(key: str, on: Iterable[str]) -> str:
    """Why clearing the switch ``key`` (``scope:name``) does nothing: it is not on (and which are)."""
    keys = sorted(on)
    now = f"on now: {', '.join(keys)}" if keys else "no kill switch is on"
    return f"no kill switch {key} is set, so nothing was switched back on ({now}; 'podium killswitch list' shows them)"
