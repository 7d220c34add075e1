"""Python step functions used by the YAML tests (``uses: yamlsteps:...``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from podium import StepContext

CALLS: list[str] = []
GATE: asyncio.Event | None = None


@dataclass
class Order:
    order_id: int
    amount: float


def double(x: int) -> int:
    CALLS.append(f"double:{x}")
    return x * 2


def letters(word: str) -> list[str]:
    return list(word)


def make_order(order_id: int, amount: float) -> Order:
    return Order(order_id, amount)


def describe(order: Order, input: dict) -> str:
    """Takes a dataclass (coerced from a mapping) and the run input, bound by name."""
    return f"order {order.order_id} for {input['customer']}: {order.amount:.2f}"


def total(make_order: Order, tax: float = 0.0) -> float:
    """Takes another step's output by parameter name, like a Python step."""
    return round(make_order.amount * (1 + tax), 2)


async def wait_for_gate(value: str) -> str:
    CALLS.append(f"gate:{value}")
    if GATE is not None:
        await GATE.wait()
    return value.upper()


def flaky(ctx: StepContext, fail_times: int) -> int:
    CALLS.append(f"flaky:{ctx.attempt}")
    if ctx.attempt <= fail_times:
        raise ConnectionError(f"attempt {ctx.attempt} failed")
    return ctx.attempt


def boom(reason: str = "boom") -> None:
    raise RuntimeError(reason)


def echo(**values: object) -> dict:
    return dict(values)


def _private() -> None:  # pragma: no cover - must never be callable from YAML
    raise AssertionError("called a private function")
