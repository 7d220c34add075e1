"""Workflows the benchmarks submit (imported by worker and server processes by module name)."""

from __future__ import annotations

import asyncio
import time

from podium import StepContext, Workflow

io3 = Workflow("bench-io3")


async def _io() -> None:
    await asyncio.sleep(0.05)


io3.step(_io, id="fetch")
io3.step(_io, id="enrich", needs=["fetch"])
io3.step(_io, id="store", needs=["enrich"])

noop = Workflow("bench-noop")


@noop.step
async def only() -> None:
    return None


io5 = Workflow("bench-io5")
"""Five steps in a line, each awaiting 50 ms: the I/O-bound run of the scale-out benchmark."""

io5.step(_io, id="fetch")
io5.step(_io, id="parse", needs=["fetch"])
io5.step(_io, id="enrich", needs=["parse"])
io5.step(_io, id="score", needs=["enrich"])
io5.step(_io, id="store", needs=["score"])


parked = Workflow("bench-parked")


@parked.step
async def wait(input: dict, ctx: StepContext) -> float | None:
    """Parks the run: on a signal (``go``), an approval, or a timer due at ``input["at"]`` (epoch
    seconds). Returns when it went on (the timer's lateness is that minus ``at``)."""
    kind = input["kind"]
    if kind == "signal":
        await ctx.wait_for("go")
    elif kind == "approval":
        await ctx.approval({"n": input.get("n")}, title="bench approval")
    else:
        await ctx.sleep(max(0.0, float(input["at"]) - time.time()))
    return time.time()
