"""A run's budget covers the runs it starts.

``max_run_tokens`` and ``max_run_cost`` bound what one run spends on models. A run also spends
through the child runs it starts (a ``subworkflow`` step, ``ctx.run_workflow``, YAML ``uses:
workflow``, a goal's plan), so their spending counts against its run budget too, at any depth: a
run's total is its own spending and that of every run under it. A fork is a run of its own (it does
not spend inside the run its original was part of): its spending counts against its own budget.

How it is counted: each live model call of a child run adds its usage to a counter in the store of
every run above it whose policy sets a run budget (namespace ``spend``, ``run:RUN_ID:tokens`` and
``:cost``; an atomic add, so children driven by other engines count too). Before each model call a
child is checked against each of those budgets (that run's own spending, read from its log once per
child, plus its counter), and a run that has started children against its own (its spending plus
its counter). A run that starts no child reads nothing more; a resumed run with a run budget reads
its counter once.

Limits: the policy over a run above is the one in force for its workflow's name (its own, else
``*``), as for a deployed workflow; a parent's own spending is read once per child run (calls it
makes in parallel with the child count from its next child on); budgets are checked before a call,
so runs spending at once may each make one call past a budget (as parallel steps of one run may).
"""

from __future__ import annotations

from typing import Any, Protocol

from .. import _serde
from ..records import EventType
from . import counters
from .bound import in_force
from .policy import Policy


class RunGovernance(Protocol):
    """What these budgets read of a run's governance (:class:`podium.governance.enforcement.RunGovernance`)."""

    service: Any
    store: Any
    run_id: str
    parent_runs: tuple[tuple[str, str], ...]
    children: bool
    above: dict[str, tuple[int, float]]
    tokens: int
    cost: float


def has_run_budget(policy: Policy | None) -> bool:
    return policy is not None and (policy.max_run_tokens is not None or policy.max_run_cost is not None)


async def spent_below(gov: RunGovernance, run_id: str) -> tuple[int, float]:
    """What the runs under ``run_id`` have spent (counted only while it has a run budget; a counter
    lowered in the store is put back: :mod:`podium.governance.counters`)."""
    tokens = await counters.read(gov.service, f"run:{run_id}:tokens")
    cost = await counters.read(gov.service, f"run:{run_id}:cost")
    return int(tokens), cost


async def charge_above(gov: RunGovernance, tokens: int, cost: float) -> None:
    """Add a child run's live model call to the counters of the runs above it that have a run budget."""
    for run_id, workflow in gov.parent_runs:
        policy = in_force(gov.service.policy_cache, workflow)
        if policy is not None and has_run_budget(policy):
            if tokens:
                await counters.add(gov.service, f"run:{run_id}:tokens", tokens, policy.max_run_tokens)
            if cost:
                await counters.add(gov.service, f"run:{run_id}:cost", cost, policy.max_run_cost)


async def _own_spending(store: Any, run_id: str) -> tuple[int, float]:
    """What run ``run_id`` spent on its own model calls, from its log (as a run loads its own usage)."""
    tokens, cost = 0, 0.0
    for ev in await store.load_events(run_id):
        if ev.type != EventType.STEP_COMPLETED or not ev.data or '"input_tokens"' not in ev.data:
            continue
        try:
            usage = getattr(_serde.loads(ev.data).get("output"), "usage", None)
        except Exception:
            continue
        if usage is not None:
            tokens += int(getattr(usage, "input_tokens", 0) or 0) + int(getattr(usage, "output_tokens", 0) or 0)
            cost += float(getattr(usage, "cost", 0.0) or 0.0)
    return tokens, cost


def _spent(what: str, tokens: int, cost: float, policy: Policy) -> list[str]:
    over = []
    if policy.max_run_tokens is not None and tokens >= policy.max_run_tokens:
        over.append(f"{tokens} tokens of {policy.max_run_tokens} for {what}")
    if policy.max_run_cost is not None and cost >= policy.max_run_cost:
        over.append(f"${cost:.4f} of ${policy.max_run_cost:.4f} for {what}")
    return over


async def own_over(gov: RunGovernance, policy: Policy) -> list[str]:
    """The run's own run budget, spent: by its own calls and, once it has started children (or was
    resumed after they spent), by theirs."""
    tokens, cost = gov.tokens, gov.cost
    if gov.children and has_run_budget(policy):
        below = await spent_below(gov, gov.run_id)
        tokens, cost = tokens + below[0], cost + below[1]
    return _spent("the run and the runs it started" if gov.children else "the run", tokens, cost, policy)


async def over_above(gov: RunGovernance) -> list[tuple[str, Policy, str]]:
    """For a child run: the run budgets of the runs above it that are spent, as ``(workflow, its
    policy, what is spent)``, nearest run first."""
    out = []
    for run_id, workflow in gov.parent_runs:
        policy = in_force(gov.service.policy_cache, workflow)
        if policy is None or not has_run_budget(policy):
            continue
        if run_id not in gov.above:
            gov.above[run_id] = await _own_spending(gov.store, run_id)
        own, below = gov.above[run_id], await spent_below(gov, run_id)
        for what in _spent(f"run {run_id} of {workflow!r} and the runs it started", own[0] + below[0], own[1] + below[1], policy):
            out.append((workflow, policy, what))
    return out


_FLAGS = {"run": ("--max-run-tokens N", "--max-run-cost USD"), "day": ("--max-daily-tokens N", "--max-daily-cost USD"),
          "entity": ("--max-entity-tokens N", "--max-entity-cost USD")}


def budget_flags(over: list[str]) -> str:
    """The ``podium policy set`` flags of the budgets ``over`` names (as ``_spent`` and ``spend_over``
    word them): what to raise, so a refusal's command needs no guessing."""
    flags: list[str] = []
    for what in over:
        scope = "entity" if "today for entity" in what else "day" if " today" in what else "run"
        flag = _FLAGS[scope][0 if " tokens of " in what else 1]
        if flag not in flags:
            flags.append(flag)
    return " ".join(flags)
