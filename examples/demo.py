"""Podium's demo: an order pipeline with parallel steps, a retry and a conditional step.

Run it with:  podium run examples.demo:workflow --input '{"order_id": 42, "amount": 1250.0}'
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import podium
from podium import RetryPolicy, StepContext

workflow = podium.Workflow("order-demo", version="1", description="Check, price and confirm an order")

_flaky_calls: dict[str, int] = {}


@dataclass
class Order:
    order_id: int
    amount: float


@workflow.step
async def load(input: dict) -> Order:
    """Load the order (here: from the run input)."""
    await asyncio.sleep(0.05)
    return Order(order_id=int(input["order_id"]), amount=float(input["amount"]))


@workflow.step
async def check_stock(load: Order) -> dict:
    """Runs in parallel with check_fraud."""
    await asyncio.sleep(0.2)
    return {"in_stock": True}


@workflow.step(retry=RetryPolicy(max_attempts=3, initial_interval=0.2))
async def check_fraud(ctx: StepContext, load: Order) -> float:
    """A flaky remote scorer: fails on its first attempt, then answers. The retry policy absorbs it."""
    await asyncio.sleep(0.2)
    if ctx.attempt == 1:
        raise ConnectionError("fraud service timed out (simulated)")
    return 0.12 if load.amount < 5000 else 0.81


@workflow.step(when=lambda load: load.amount >= 1000)
async def manager_review(load: Order) -> str:
    """Only for large orders: skipped (and recorded as skipped) below 1,000."""
    await asyncio.sleep(0.05)
    return f"approved order {load.order_id} worth {load.amount:.2f}"


@workflow.step
def confirm(load: Order, check_stock: dict, check_fraud: float, manager_review: str | None = None) -> dict:
    """A plain sync function: runs in a thread, never blocking the loop."""
    ok = check_stock["in_stock"] and check_fraud < 0.5
    return {
        "order_id": load.order_id,
        "status": "confirmed" if ok else "held",
        "fraud_score": check_fraud,
        "review": manager_review or "not needed",
    }
