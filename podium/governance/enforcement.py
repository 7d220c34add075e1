"""Policies and kill switches enforced inside a run, at call time: the model and tool layer
(``podium.ai``) asks here before each model or tool call, and reports usage after it.

Governance does not reach into the engine: a step context offers the :class:`RunScope` port, whose
``governance`` is a :class:`RunGovernance` that the executor builds for each run.
"""

from __future__ import annotations

import contextvars
import dataclasses
import hashlib
import json
import shlex
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from .. import _serde
from ..errors import _Suspend
from ..records import WRITER
from . import counters
from .bound import strictest
from .lineage_budgets import budget_flags, charge_above, has_run_budget, over_above, own_over, spent_below
from .policy import (
    Policy,
    PolicyViolation,
    connector_refusal,
    names_connector,
    over_call,
    provider_refusal,
    tool_refusal,
)

if TYPE_CHECKING:
    from ..storage import Store
    from .service import Governance


class RunGovernance:
    """Governance as one run sees it: the policies over it, kill switches, its audit entries, and the
    model usage it has spent (for budgets)."""

    def __init__(
        self,
        service: Governance,
        store: Store,
        *,
        run_id: str,
        workflow: str,
        tenant: str | None,
        run_input: Any,
        recorded: Callable[[], Iterable[tuple[str, Any]]],
        lineage: tuple[str, ...] = (),
        parent_runs: tuple[tuple[str, str], ...] = (),
        deploy: str | None = None,
    ) -> None:
        self.service = service
        self.lineage = lineage
        """The workflows of the run's parent runs, nearest first (their kill switches and policies hold it too)."""
        self.parent_runs = parent_runs
        """The runs it is part of, ``(run id, workflow)``: their run budgets count its spending
        (:mod:`podium.governance.lineage_budgets`)."""
        self.children = False
        """It has started child runs (or, resumed, had): its run budget counts what they spend."""
        self.above: dict[str, tuple[int, float]] = {}
        """What each run above it had spent itself, read once (its children's are counted apart)."""
        self.store = store
        self.run_id = run_id
        self.workflow = workflow
        self.tenant = tenant
        self.run_input = run_input
        self._recorded = recorded
        self.tokens = 0
        """Model tokens this run has spent so far (loaded from its log on first need)."""
        self.cost = 0.0
        self.budget_waived: set[str] = set()
        """The budgets a person let the run go on past (:func:`budget_id`): another one reached asks again."""
        self.usage_loaded = False
        self.deploy = deploy
        """None: the run's workflow owns its name (it is the deployed one, or the store has no users).
        Otherwise the command that deploys it: the run is under ``*`` and its name's policy both, and
        a refusal by ``*`` says this command (:mod:`podium.governance.bound`)."""
        self._strictest: tuple[Policy | None, Policy | None, Policy | None] = (None, None, None)
        self._guard: tuple[tuple[Policy | None, ...], Policy | None] = ((), None)

    @property
    def policy(self) -> Policy | None:
        """The workflow's policy (or the ``*`` default), if any; for a run that is not the deployed
        workflow of its name, the strictest of the two (made once per change of either)."""
        if self.deploy is None:
            return self.service.policy_for(self.workflow)
        cache = self.service.policy_cache
        named, default = cache.get(self.workflow), cache.get("*")
        memo = self._strictest
        if memo[0] is not named or memo[1] is not default:  # the policies were read again, or changed
            memo = self._strictest = (named, default, self.service.policy_for(self.workflow, deployed=False))
        return memo[2]

    @property
    def guard(self) -> Policy | None:
        """What the content of the run's calls is held to (redaction, personal data, banned words and
        tones, output checks): its :attr:`policy` and, for a child run, the policies of its parents'
        workflows too, the strictest of them (a child works on their behalf: a parent's restriction
        holds it). Budgets stay each run's own: they are read from :attr:`policy`."""
        own = self.policy
        cache = self.service.policy_cache
        parents = tuple(cache[p] for p in self.lineage if p in cache and ":" not in p) if cache else ()
        if not parents:
            return own
        key, memo = (own, *parents), self._guard
        if len(memo[0]) != len(key) or any(a is not b for a, b in zip(memo[0], key, strict=True)):
            merged = own
            for parent in parents:
                merged = parent if merged is None else strictest(merged, parent)
            memo = self._guard = (key, merged)
        return memo[1]

    def policies(self, agent: str | None) -> list[tuple[str, Policy]]:
        """The policies over a call: the workflow's (or ``*``; both for a run not deployed), and the
        agent's (``agent:NAME``, or ``agent:*`` for an agent no policy names); see
        :func:`podium.governance.policy.over_call`. A child run is under its parents' workflows'
        policies too (it works on their behalf: each must allow a call)."""
        scoped = over_call(self.service.policy_cache, self.workflow, agent, deploy=self.deploy)
        if self.lineage and self.service.policy_cache:
            cache = self.service.policy_cache
            scoped += [(f"workflow {p!r} (a parent run's)", cache[p]) for p in self.lineage if p in cache and ":" not in p]
        return scoped

    def over_child(self, workflow: str) -> list[tuple[str, Policy]]:
        """The policies a child run of ``workflow`` started by this run will be held by (:meth:`policies`
        of that run, without an agent): its workflow's (or ``*``), and this run's and its parents'
        workflows'. For a workflow made at run time (a goal's plan), never the deployed one of its
        name: in a store with users it is under ``*`` as well. What a goal's plan is validated against."""
        cache = self.service.policy_cache
        deploy = "podium workflows deploy FILE" if self.service.users_exist else None
        scoped = over_call(cache, workflow, None, deploy=deploy)
        parents = (self.workflow, *self.lineage)
        return scoped + [(f"workflow {p!r} (a parent run's)", cache[p]) for p in parents if p in cache and ":" not in p]

    async def audit(self, action: str, **data: Any) -> None:
        await self.service.record(action, self.run_id, actor="engine", **data)

    def load_usage(self) -> bool:
        """The run's usage so far, from the calls its log holds (made before this engine took it up).
        Done before this engine's first live call, which :meth:`account` adds itself. Whether the log
        held anything (a resumed run)."""
        self.usage_loaded = True
        resumed = False
        for status, data in self._recorded():
            resumed = True
            if status != "completed" or not data or '"input_tokens"' not in data:
                continue
            try:
                usage = getattr(_serde.loads(data).get("output"), "usage", None)
            except Exception:
                continue
            if usage is not None:
                self.add(usage)
        return resumed

    def add(self, usage: Any) -> None:
        self.tokens += int(getattr(usage, "input_tokens", 0) or 0) + int(getattr(usage, "output_tokens", 0) or 0)
        self.cost += float(getattr(usage, "cost", 0.0) or 0.0)

    def entity(self, policy: Policy) -> str | None:
        """The entity a run is for: ``policy.entity_field`` of its input, or its tenant."""
        if policy.entity_field is None:
            return self.tenant
        value: Any = self.run_input
        for part in policy.entity_field.split("."):
            value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
            if value is None:
                return None
        return str(value)

    def spend_keys(self, policy: Policy) -> dict[str, str]:
        day = time.strftime("%Y-%m-%d", time.gmtime())
        keys = {"day": f"day:{self.workflow}:{day}"}
        entity = self.entity(policy)
        if entity is not None:  # a keyed digest: the counter never names the person (erasure)
            keys["entity"] = f"entity:{self.workflow}:{self.store.audit_keys.mac(f'spend|{entity}')}:{day}"
        return keys

    async def spend_over(self, policy: Policy) -> list[str]:
        """Which daily and per-entity budgets the workflow has spent (totals shared by every process)."""
        over = []
        limits = {
            "day": (policy.max_daily_tokens, policy.max_daily_cost, "today"),
            "entity": (policy.max_entity_tokens, policy.max_entity_cost, f"today for entity {self.entity(policy)!r}"),
        }
        for scope, key in self.spend_keys(policy).items():
            max_tokens, max_cost, what = limits[scope]
            if max_tokens is not None:
                spent = await counters.read(self.service, f"{key}:tokens")
                if spent >= max_tokens:
                    over.append(f"{int(spent)} tokens of {max_tokens} {what}")
            if max_cost is not None:
                spent = await counters.read(self.service, f"{key}:cost")
                if spent >= max_cost:
                    over.append(f"${spent:.4f} of ${max_cost:.4f} {what}")
        return over


#: The names of budget requests: a decision on one waives that budget for the rest of the run, so a
#: later request under the name takes it whatever it shows (engine/waits.py). The engine's alone: a
#: step's ``ctx.approval(name=...)`` there is refused (it would carry one decision to any question).
BUDGET_REQUESTS = "approval:budget:"
#: Set while the budget check asks (the one caller that may name a request in :data:`BUDGET_REQUESTS`).
BUDGET_ASKING: contextvars.ContextVar[bool] = contextvars.ContextVar("podium_budget_asking", default=False)


class RunScope(Protocol):
    """What enforcement asks of the step a call is made in (a :class:`podium.StepContext`)."""

    run_id: str
    step_id: str
    iteration: int
    index: int | None

    @property
    def governance(self) -> RunGovernance: ...

    def next_call_name(self, name: str) -> str: ...

    async def approval(
        self, payload: Any = None, *, title: str = "", role: str | None = None, timeout: float | None = None,
        default: Any = ..., name: str | None = None,
    ) -> dict[str, Any]: ...


def refused_by(decision: Mapping[str, Any], what: str) -> str:
    """``"NAME WHAT: COMMENT"``: who refused an approval (else "the approver"), ``what`` they refused,
    and their comment if they gave one (the tail of every refusal's message)."""
    comment = decision.get("comment")
    return f"{decision.get('by') or 'the approver'} {what}" + (f": {comment}" if comment else "")


def asked_about(target: str, args: Any) -> str:
    """A digest of what an approval is asked about, in its name: a decision is recorded under the
    name, so a step attempted again with other arguments (an amount read again from another system)
    is asked again, never answered by the decision about the first ones. Tool and connector calls,
    ML actions, data gates and escalations are named with it; the same question (a deterministic
    replay) has the same name, so it is never asked twice."""
    text = json.dumps([target, args], sort_keys=True, default=_canonical, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _canonical(value: Any) -> Any:
    """What JSON cannot write, as :func:`asked_about` digests it: a set in one order in every process
    (``str`` of a set follows the string hashes, seeded per process: a replay in another process
    asked again), anything else as its ``str``."""
    if isinstance(value, set | frozenset):
        return sorted(value, key=lambda v: json.dumps(v, sort_keys=True, default=_canonical, ensure_ascii=False))
    return str(value)


async def check_tool(
    ctx: RunScope | None,
    tool: str,
    arguments: dict[str, Any] | None = None,
    *,
    agent: str | None = None,
    call: str | None = None,
    connector: tuple[str, str] | None = None,
    deferred: Callable[[dict[str, Any]], list[tuple[str, str]]] | None = None,
    also: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Refuse (and audit) a tool call the policy does not allow; ask a person first for a tool the
    policy says needs approval. Returns the arguments to call it with (an approver may edit them).
    ``also``: the tool's other names (an MCP tool's name on its server, which a workflow file's
    ``prefix:`` changes into the name the model calls): a policy's ``approve_tools`` naming any of
    them asks; ``allowed_tools`` must name the one called.
    A tool that is a connector's operation (``connector``: name, operation) is also checked as a
    connector call (:func:`check_connector`), with the later calls its arguments record
    (``deferred``: a ``transact`` tool's outbox messages)."""
    args = dict(arguments or {})
    if ctx is None:
        return args
    if connector is not None:
        args = await check_tool(ctx, tool, args, agent=agent, call=call, also=also)
        return await check_connector(ctx, *connector, args, deferred=deferred, agent=agent, call=call)
    gov = ctx.governance
    scoped = gov.policies(agent)
    refused = tool_refusal(scoped, tool)
    if refused is not None:
        await gov.audit("policy.refuse", tool=tool, step=ctx.step_id, agent=agent)
        raise PolicyViolation(refused)
    if not any(name in policy.approve_tools for _, policy in scoped for name in (tool, *also)):
        return args
    # Named after the durable call it guards, so a resumed step asks the same question again.
    label = ctx.next_call_name(call or f"tool.{tool}")
    decision = await ctx.approval(
        {"tool": tool, "arguments": args},
        title=f"call tool {tool!r} in step {ctx.step_id!r}?",
        name=f"approval:tool:{ctx.step_id}:{ctx.iteration}:{ctx.index}:{label}:{asked_about(tool, args)}",
    )
    if not decision.get("approved"):
        raise PolicyViolation(refused_by(decision, f"did not approve calling tool {tool!r}"))
    edited = decision.get("payload")
    if decision.get("edited"):
        if not (isinstance(edited, dict) and isinstance(edited.get("arguments"), dict)):
            raise PolicyViolation(
                f"the approver's edit of the call to tool {tool!r} must look like "
                f'{{"tool": ..., "arguments": {{...}}}}, got {str(edited)[:200]}; the tool was not called'
            )
        return dict(edited["arguments"])
    return args


def connector_switch(
    service: Governance, workflow: str, connector: str, agent: str | None = None, lineage: tuple[str, ...] = ()
) -> tuple[str, dict[str, Any]] | None:
    """The kill switch that stops a call to ``connector`` from a run of ``workflow`` (what is off,
    the switch), or None: the system's own switch, then those over the whole run (``all``, its
    workflow, its agent), so that a step making many calls stops at its next call, not its end.
    Runs and the API's dry run both ask this."""
    off = service.switch(f"connector:{connector}") or service.switch("connector:*")
    if off is not None:
        return f"connector {connector!r}", off
    off = service.switched_off(workflow, agent=agent, lineage=lineage)
    if off is not None:
        return f"workflow {workflow!r}" + (f" (or agent {agent!r})" if agent else "") + _parents(lineage), off
    return None


def _parents(lineage: tuple[str, ...]) -> str:
    """How a message names the workflows a child run works for (their switches hold it)."""
    return f" (or the workflow of a parent run: {', '.join(map(repr, lineage))})" if lineage else ""


async def check_connector(
    ctx: RunScope | None,
    connector: str,
    operation: str,
    arguments: dict[str, Any],
    *,
    deferred: Callable[[dict[str, Any]], list[tuple[str, str]]] | None = None,
    agent: str | None = None,
    call: str | None = None,
) -> dict[str, Any]:
    """Before a live call of ``operation`` on ``connector`` from a run: honour a ``connector`` kill
    switch (``pause`` parks the run until it is cleared, ``cancel`` fails the step), refuse (and
    audit) what the policies do not allow, including the later calls the arguments record
    (``deferred``: a ``transact``'s outbox messages), and ask a person first where a policy says so.
    Returns the arguments to call with (an approver may edit them, never the target)."""
    args = dict(arguments)
    if ctx is None:
        return args
    writer = WRITER.get()
    if writer is not None and writer.approved:  # what a person approved went with the call before
        WRITER.set(writer := dataclasses.replace(writer, approved=(), approved_by=None))
    gov = ctx.governance
    switched = connector_switch(gov.service, gov.workflow, connector, agent, gov.lineage)
    if switched is not None:
        what_off, off = switched
        if off.get("mode") == "cancel":
            await gov.audit("policy.refuse", connector=connector, operation=operation, step=ctx.step_id, reason="kill switch")
            raise PolicyViolation(
                f"{what_off} is switched off ({off.get('reason') or 'no reason given'}, by {off.get('by')}); "
                f"step {ctx.step_id!r} did not call {operation!r}; 'podium killswitch list' shows the switch"
            )
        raise _Suspend("__killswitch__", None)
    scoped = gov.policies(agent)
    if not scoped:
        return args

    async def refuse(target: str, op: str, where: str = "") -> None:
        refused = connector_refusal(scoped, target, op)
        if refused is not None:
            await gov.audit("policy.refuse", connector=target, operation=op, step=ctx.step_id, agent=agent)
            raise PolicyViolation(f"step {ctx.step_id!r}{where}: {refused}")

    await refuse(connector, operation)
    later = deferred(args) if deferred else []
    for i, (target, op) in enumerate(later):
        await refuse(target, op, f", message {i} of {connector}.{operation}")

    def asks(target: str, op: str) -> bool:
        return any(names_connector(policy.approve_connectors, target, op) for _, policy in scoped)

    # A message for an operation a person approves is that call made later: the call recording it
    # is approved first (the approver sees the messages in its arguments).
    ask_for = sorted({f"{t}.{o}" for t, o in later if asks(t, o)})
    if not asks(connector, operation) and not ask_for:
        return args
    what = f"{connector}.{operation}"
    label = ctx.next_call_name(call or f"connector:{what}")
    recording = f" (it records {', '.join(repr(m) for m in ask_for)} for later)" if ask_for else ""
    decision = await ctx.approval(
        {"connector": connector, "operation": operation, "arguments": args},
        title=f"call {what!r} in step {ctx.step_id!r}{recording}?",
        name=f"approval:connector:{ctx.step_id}:{ctx.iteration}:{ctx.index}:{label}:{asked_about(what, args)}",
    )
    if not decision.get("approved"):
        raise PolicyViolation(refused_by(decision, f"did not approve calling {what!r}"))
    if ask_for and writer is not None:  # the outbox records who approved the messages it records
        WRITER.set(dataclasses.replace(writer, approved=tuple(ask_for), approved_by=str(decision.get("by") or "")))
    if not decision.get("edited"):
        return args
    edited = decision.get("payload")
    if not (
        isinstance(edited, dict)
        and isinstance(edited.get("arguments"), dict)
        and (edited.get("connector"), edited.get("operation")) == (connector, operation)
    ):
        raise PolicyViolation(
            f"the approver's edit of the call to {what!r} must keep its connector and operation and look like "
            f'{{"connector": {connector!r}, "operation": {operation!r}, "arguments": {{...}}}}; it was not called'
        )
    args = dict(edited["arguments"])
    for i, (target, op) in enumerate(deferred(args) if deferred else ()):
        await refuse(target, op, f", message {i} of {what} (as edited)")
    return args


async def check_model(
    ctx: RunScope | None, providers: list[str], *, agent: str | None = None, budget: bool = True
) -> None:
    """Refuse a model call to a provider the policy or a kill switch forbids, or (with ``budget``)
    over budget. Embedding calls (``budget=False``) report no tokens, so budgets do not stop them."""
    if ctx is None:
        return
    gov = ctx.governance
    policy = gov.policy
    # a child's parents' policies hold it even where its own workflow has none
    scoped = gov.policies(agent) if (policy is not None or agent is not None or gov.lineage) else []
    for provider in providers:
        key = next((k for k in (f"provider:{provider}", "provider:*") if gov.service.switch(k) is not None), None)
        if key is not None:  # the provider's own switch refuses in either mode (another may answer)
            sw = gov.service.switch(key) or {}
            await gov.audit("policy.refuse", provider=provider, reason="kill switch")
            clear = "provider --all" if key == "provider:*" else f"provider {shlex.quote(provider)}"
            raise PolicyViolation(
                f"provider {provider!r} is switched off by kill switch {key} ({sw.get('mode') or 'pause'}: "
                f"{sw.get('reason') or 'no reason given'}, by {sw.get('by') or '?'}): a provider's switch refuses "
                f"calls whatever its mode (the run does not park), so step {ctx.step_id!r} made no call (a fallback "
                f"chain is refused when any of its providers is). When the incident is over: podium killswitch clear {clear}"
            )
        off = gov.service.switched_off(gov.workflow, agent=agent, lineage=gov.lineage)
        if off is not None:  # the whole run's switch (all, workflow, agent), as at a connector call
            if off.get("mode") != "cancel":
                raise _Suspend("__killswitch__", None)
            await gov.audit("policy.refuse", provider=provider, step=ctx.step_id, reason="kill switch")
            raise PolicyViolation(
                f"workflow {gov.workflow!r}{_parents(gov.lineage)} is switched off ({off.get('reason') or 'no reason given'}, by {off.get('by')}); "
                f"step {ctx.step_id!r} made no further model call; 'podium killswitch list' shows the switch"
            )
        refused = provider_refusal(scoped, provider)
        if refused is not None:
            await gov.audit("policy.refuse", provider=provider, agent=agent)
            raise PolicyViolation(refused)
    if not budget or (policy is None and not gov.parent_runs):
        return
    over: list[str] = []
    if policy is not None:
        if not gov.usage_loaded and gov.load_usage() and has_run_budget(policy) and not gov.children:
            gov.children = any(await spent_below(gov, gov.run_id))  # resumed: its children spent before
        over.extend(await own_over(gov, policy))
        if policy.has_spend_limits:
            over.extend(await gov.spend_over(policy))
    above = await over_above(gov) if gov.parent_runs else []  # the budgets of the runs it is part of
    if gov.budget_waived:  # a person let it go on past these: not past the others
        over = [w for w in over if budget_id(w) not in gov.budget_waived]
        above = [a for a in above if budget_id(a[2]) not in gov.budget_waived]
    if not over and not above:
        return
    mine = bool(over)  # its own budgets are spent (else only those of runs it is part of)
    flags = budget_flags(over or [what for wf, _, what in above if wf == above[0][0]])  # of the policy named below
    whose = policy if mine and policy is not None else above[0][1]
    stop = "stop" in [whose.on_exceed, *(p.on_exceed for _, p, _ in above)]
    over.extend(what for _, _, what in above)
    await gov.audit("policy.budget", spent=over, on_exceed="stop" if stop else "approval")
    of = "its policy" if mine else "a run above it"
    if not stop:
        # One request per budget, named by the budget (not by what was spent): a decision waives the
        # budget it was asked about, and the step, run again, meets the same names in any order.
        for spent in sorted(over, key=budget_id):
            asking = BUDGET_ASKING.set(True)
            try:
                decision = await ctx.approval(
                    {"spent": [spent]}, title=f"run budget reached ({spent}): let it continue?",
                    name=f"{BUDGET_REQUESTS}{asked_about('budget', budget_id(spent))}",
                )
            finally:
                BUDGET_ASKING.reset(asking)
            if not decision.get("approved"):
                raise PolicyViolation(
                    f"run {gov.run_id} of {gov.workflow!r} reached a budget of {of} ({spent}) and "
                    + refused_by(decision, "did not let it go on")
                )
            gov.budget_waived.add(budget_id(spent))
        return
    if not mine:  # a budget of a run it is part of: raised in that run's policy
        raise PolicyViolation(
            f"run {gov.run_id} of {gov.workflow!r} reached a budget of {of} ({'; '.join(over)}); raise it with: "
            f"podium policy set {shlex.quote(above[0][0])} --merge {flags}"
        )
    undeployed = f"; this definition is not deployed, so the budgets of '*' hold it too: deploy it, {gov.deploy}" if gov.deploy else ""
    raise PolicyViolation(
        f"run {gov.run_id} of {gov.workflow!r} reached a budget of {of} ({'; '.join(over)}); raise it with: "
        f"podium policy set {_budget_from(gov)} --merge {flags}{undeployed}"
    )


def budget_id(spent: str) -> str:
    """Which budget a "spent" line names, without the amount spent (``$0.0600 of $0.0500 today`` ->
    ``$ of $0.0500 today 2026-12-06``); the run's own budget is one whether or not it has started
    children yet. A day's budget (the workflow's, an entity's) is the UTC day's: a run still going the
    next day is asked again, not answered by the waiver of the day before."""
    amount, _, rest = spent.partition(" ")
    unit = "$" if amount.startswith("$") else ""
    day = " " + time.strftime("%Y-%m-%d", time.gmtime()) if " today" in rest else ""
    return unit + " " + rest.replace(" and the runs it started", "") + day


_BUDGETS = ("max_run_tokens", "max_run_cost", "max_daily_tokens", "max_daily_cost", "max_entity_tokens", "max_entity_cost")


def _budget_from(gov: RunGovernance) -> str:
    """The policy (as a ``podium policy set`` argument) whose budgets hold the run: its workflow's,
    or ``'*'`` when it has none, or, for a definition not deployed (held by the lower of the two),
    ``'*'`` when a budget of it is lower than its name's."""
    cache = gov.service.policy_cache
    named, default = cache.get(gov.workflow), cache.get("*")
    if default is None or (named is not None and gov.deploy is None):
        return shlex.quote(gov.workflow)
    if named is not None:
        for field in _BUDGETS:
            mine, star = getattr(named, field), getattr(default, field)
            if star is not None and (mine is None or star < mine):
                break
        else:
            return shlex.quote(gov.workflow)
    return "'*'"


def embedder_provider(embedder: Any) -> str:
    """Where an embedder sends texts: ``local`` (in this process: ``local:``, ``hash:``) or the
    provider of its ``provider:model`` name (``openai``, ``ollama``...)."""
    kind = str(getattr(embedder, "name", "") or "").partition(":")[0]
    return "local" if kind in ("local", "hash") else kind or "unknown"


def embedding_switched_off(service: Governance, embedder: Any, what: str) -> str | None:
    """Why a kill switch stops ``what`` from embedding with ``embedder`` outside a run (a switch on
    its provider, on every provider, or on everything), as a message saying how to clear it; None
    if none does. Every surface that embeds outside a run (the HTTP API, the CLI) asks this."""
    provider = embedder_provider(embedder)
    scopes = {
        f"provider:{provider}": (f"provider {provider}", f"provider {provider}"),
        "provider:*": ("every provider", "provider --all"),
        "all:*": ("everything", "all"),
    }
    found = [(*scopes[key], sw) for key in scopes if (sw := service.switch(key)) is not None]
    if not found:
        return None
    scope, clear, off = found[0]
    return (
        f"{what} embeds with {getattr(embedder, 'name', '?')!r}, and {scope} is switched off "
        f"({off.get('reason') or 'no reason given'}, by {off.get('by') or '?'}); nothing was sent. When the "
        f"incident is over: podium killswitch clear {clear}"
    )


async def check_embedding(ctx: RunScope | None, embedder: Any, texts: list[str], *, what: str) -> list[str]:
    """``texts`` as the run's policy lets them reach ``embedder``: an embedding call is a model call.
    A provider the policy does not allow, or one a kill switch stopped, is refused; personal data is
    kept off a remote embedder under ``pii_local_only``; ``redact: [prompts]`` redacts the texts.
    Refusals are audited (``policy.refuse``). ``what`` names the call in errors (``memory of ...``)."""
    if ctx is None:
        return texts
    provider = embedder_provider(embedder)
    await check_model(ctx, [provider], budget=False)
    policy = ctx.governance.guard
    if policy is None:
        return texts
    from .pii import contains_pii, redact

    if "prompts" in policy.redact:
        texts = [redact(t) for t in texts]
    if policy.pii_local_only and provider != "local" and any(contains_pii(t) for t in texts):
        await audit(ctx, "policy.refuse", providers=[provider], reason="PII in prompt")
        raise PolicyViolation(
            f"step {ctx.step_id!r}: the text for {what} holds personal data and workflow "
            f"{ctx.governance.workflow!r}'s policy keeps it on local models (pii_local_only), but its "
            f"embedder {getattr(embedder, 'name', '?')!r} is a service ({provider}); use a local embedder "
            f"(PODIUM_EMBEDDER=local:all-minilm-l6-v2; a knowledge base keeps the one it was built with), "
            f"or redact prompts first (policy redact: [prompts])"
        )
    return texts


async def charge(ctx: RunScope | None, usage: Any) -> None:
    """Add a live model call's usage to the day's and the entity's totals (atomic in the store, so
    every worker counts against the same budget). Replayed calls are not charged again."""
    if ctx is None or usage is None:
        return
    gov = ctx.governance
    policy = gov.policy
    limits = policy is not None and policy.has_spend_limits
    if not limits and not gov.parent_runs:
        return
    tokens = int(getattr(usage, "input_tokens", 0) or 0) + int(getattr(usage, "output_tokens", 0) or 0)
    cost = float(getattr(usage, "cost", 0.0) or 0.0)
    if policy is not None and limits:
        for scope, key in gov.spend_keys(policy).items():
            day = scope == "day"
            if tokens:
                await counters.add(gov.service, f"{key}:tokens", tokens, policy.max_daily_tokens if day else policy.max_entity_tokens)
            if cost:
                await counters.add(gov.service, f"{key}:cost", cost, policy.max_daily_cost if day else policy.max_entity_cost)
    if gov.parent_runs:  # a child: the runs it is part of count it against their run budgets
        await charge_above(gov, tokens, cost)


def tool_call_bound(ctx: RunScope | None, agent: str, own: int | None) -> int | None:
    """How many tool calls agent ``agent`` may make in one run of it: the lowest of its own
    ``max_tool_calls`` and the ``max_tool_calls`` of the policies over it (None: no bound)."""
    bounds = [own] if own is not None else []
    if ctx is not None:
        bounds += [p.max_tool_calls for _, p in ctx.governance.policies(agent) if p.max_tool_calls is not None]
    return min(bounds) if bounds else None


async def check_agent(ctx: RunScope | None, agent: str) -> None:
    """Honour an ``agent`` kill switch between an agent's iterations: ``pause`` parks the run (it
    goes on where it stopped once the switch is cleared); ``cancel`` fails the step."""
    if ctx is None:
        return
    service = ctx.governance.service
    # agent:* (podium killswitch set agent --all) stops every agent, whatever the workflow named it.
    off = service.switch(f"agent:{agent}") or service.switch("agent:*")
    if off is None:
        return
    if off.get("mode") == "cancel":
        await audit(ctx, "policy.refuse", agent=agent, reason="kill switch")
        raise PolicyViolation(
            f"agent {agent!r} is switched off ({off.get('reason') or 'no reason given'}, by {off.get('by')})"
        )
    raise _Suspend("__killswitch__", None)


def policy_of(ctx: RunScope | None) -> Policy | None:
    """The policy that governs the content of the calls of the run of ``ctx``: its own, with its
    parents' restrictions for a child run (:attr:`RunGovernance.guard`); None outside a run or when
    none is set. Budgets are read from ``ctx.governance.policy``, the run's own."""
    return ctx.governance.guard if ctx is not None else None


async def audit(ctx: RunScope | None, action: str, **data: Any) -> None:
    """Record a decision made inside a step (a model call, a tool call, a route) in the audit log."""
    if ctx is None:
        return
    gov = ctx.governance
    await gov.audit(action, workflow=gov.workflow, step=ctx.step_id, **data)


def account(ctx: RunScope | None, usage: Any) -> None:
    """Add a live model call's usage to its run's running totals."""
    if ctx is None or usage is None:
        return
    gov = ctx.governance
    if gov.usage_loaded:  # else not needed yet: load_usage will find this call in the log
        gov.add(usage)
