"""Workflows the worker benchmark submits (imported by the worker processes by module name)."""

from __future__ import annotations

import asyncio

from podium import Workflow

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
