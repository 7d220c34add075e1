"""Workflows of tests/test_attack_surfaces.py, served by a real ``podium serve``."""

from __future__ import annotations

from typing import Any

import podium
from podium import StepContext

payouts = podium.Workflow("payouts")


@payouts.step
async def pay(ctx: StepContext, input: dict[str, Any]) -> list[int]:
    """Each payment asks a person first, under one name (a loop in a step, as one writes it)."""
    paid = []
    for amount in input["amounts"]:
        decision = await ctx.approval({"amount": amount}, title=f"pay {amount}?", name="pay")
        if decision["approved"]:
            paid.append(amount)  # what was asked about, as the code around a request goes on with
    return paid


monthly = podium.Workflow("monthly")


@monthly.step(loop=podium.Loop(to="ask", while_=lambda ask: ask["by"] == "sla", max_iterations=3))
async def ask(ctx: StepContext, input: dict[str, Any]) -> dict[str, Any]:
    """Asks under ``pay`` each pass; the first request times out (its SLA) and the next pass asks
    again, for another amount, under the same name."""
    amount, timeout = (10, float(input.get("sla", 2.0))) if ctx.iteration == 0 else (50000, 3600.0)
    decision = await ctx.approval({"amount": amount}, name="pay", timeout=timeout, default={"approved": False, "by": "sla"})
    return {"by": decision["by"], "paid": amount if decision["approved"] else 0}


refund = podium.Workflow("refund")


@refund.step
async def confirm(ctx: StepContext, input: dict[str, Any]) -> bool:
    decision = await ctx.approval(input, title="refund?")
    return bool(decision["approved"])


claims = podium.Workflow("claims")


@claims.step
async def handle(ctx: StepContext, input: dict[str, Any]) -> bool:
    """A step that runs a sub-workflow: its approval is asked in a child run (an id with a '/')."""
    return bool(await ctx.run_workflow(refund, input, name="refund"))


payout_requested = podium.Workflow("payout-requested")
payout_requested.triggers = [{"event": "payout.requested"}]  # type: ignore[attr-defined]


@payout_requested.step
async def approve_payout(ctx: StepContext, input: dict[str, Any]) -> dict[str, Any]:
    decision = await ctx.approval(input, title=f"pay out {input.get('amount')}?")
    return {"paid": input.get("amount") if decision["approved"] else 0, "by": decision["by"]}


rounds = podium.Workflow("rounds")


@rounds.step(loop=podium.Loop(to="pay_round", while_=lambda pay_round: pay_round["round"] < 1, max_iterations=3))
async def pay_round(ctx: StepContext, input: dict[str, Any]) -> dict[str, Any]:
    """One payment a pass, each asked under ``pay``: the loop's passes share the name."""
    amount = input["amounts"][ctx.iteration]
    decision = await ctx.approval({"amount": amount}, title=f"pay {amount}?", name="pay")
    return {"round": ctx.iteration, "paid": amount if decision["approved"] else 0}


regional = podium.Workflow("regional")


@regional.step
async def ask_region(ctx: StepContext, input: dict[str, Any]) -> bool:
    """A request whose name holds '/' (as an output check's does: approval:output:STEP:.../CALL)."""
    decision = await ctx.approval(input, title="refund in the EU?", name="refund/eu")
    return bool(decision["approved"])


regional_claims = podium.Workflow("regional-claims")


@regional_claims.step
async def handle_region(ctx: StepContext, input: dict[str, Any]) -> bool:
    return bool(await ctx.run_workflow(regional, input, name="regional"))
