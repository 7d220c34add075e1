"""Workflows for the multi-worker torture test: every step attempt logs its start and end (with
the worker's pid and a timestamp) to the file named by $PODIUM_TORTURE_LOG."""

from __future__ import annotations

import asyncio
import os
import random
import time

from podium import StepContext, Workflow

wf = Workflow("torture", version="1")


def _log(kind: str, ctx: StepContext) -> None:
    line = f"{kind} {ctx.idempotency_key} {os.getpid()} {time.time():.6f}\n"
    fd = os.open(os.environ["PODIUM_TORTURE_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one write of a short line to an O_APPEND file: never interleaved
    finally:
        os.close(fd)


async def _work(ctx: StepContext, value: int) -> int:
    _log("start", ctx)
    await asyncio.sleep(random.uniform(0.005, float(os.environ.get("PODIUM_TORTURE_SLEEP", "0.05"))))
    _log("end", ctx)
    return value + 1


@wf.step
async def a(ctx: StepContext, input):
    return await _work(ctx, input)


@wf.step
async def b(ctx: StepContext, a):
    return await _work(ctx, a)


@wf.step
async def c(ctx: StepContext, a):
    return await _work(ctx, a)


@wf.step
async def d(ctx: StepContext, b, c):
    return await _work(ctx, b + c)
