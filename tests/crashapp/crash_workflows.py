"""A workflow whose steps record their side effects in a log file, and can be told to hang at a
chosen step execution so that a test can kill -9 the process there."""

from __future__ import annotations

import asyncio
import os

from podium import Loop, RetryPolicy, StepContext, Workflow

wf = Workflow("crashy", version="1")


def _key(ctx: StepContext) -> str:
    return ctx.idempotency_key.split(":", 1)[1]


async def effect(ctx: StepContext, input: dict) -> None:
    """Log the start of this attempt, then hang here if this is the step the test wants to kill at."""
    key = _key(ctx)
    with open(input["log"], "a") as fh:
        fh.write(f"start {key} {ctx.attempt} {ctx.idempotency_key} {key}@{ctx.attempt}\n")
    if input["block"] in (key, f"{key}@{ctx.attempt}") and os.path.exists(input["marker"]):
        await asyncio.sleep(3600)


def done(ctx: StepContext, input: dict) -> None:
    with open(input["log"], "a") as fh:
        fh.write(f"end {_key(ctx)} {ctx.idempotency_key}\n")


@wf.step
async def a(ctx: StepContext, input):
    await effect(ctx, input)
    done(ctx, input)
    return [1, 2, 3, 4, 5]


@wf.step
async def b(ctx: StepContext, input, a):
    await effect(ctx, input)
    await asyncio.sleep(0.01)
    done(ctx, input)
    return sum(a)


@wf.step(map="a", max_parallel=2)
async def c(ctx: StepContext, input, a):
    await effect(ctx, input)
    await asyncio.sleep(0.01)
    done(ctx, input)
    return a * 10


@wf.step(retry=RetryPolicy(max_attempts=3, initial_interval=0.01, jitter=0))
async def d(ctx: StepContext, input, b, c):
    await effect(ctx, input)
    if ctx.attempt == 1:
        raise ConnectionError("first attempt always fails")
    done(ctx, input)
    return b + sum(c)


@wf.step(loop=Loop(to="e", while_=lambda e: e < 3, max_iterations=5))
async def e(ctx: StepContext, input, d):
    await effect(ctx, input)
    done(ctx, input)
    return ctx.iteration + 1


@wf.step
async def f(ctx: StepContext, input, d, e):
    await effect(ctx, input)
    done(ctx, input)
    return {"d": d, "e": e}
