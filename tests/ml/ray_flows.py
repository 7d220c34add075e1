"""Workflows whose steps run on Ray, for tests/ml/ray_inside.py (imported by Ray's workers too)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import podium
from podium import RetryPolicy

where = podium.Workflow("on-ray")


@where.step(executor="ray")
def heavy(input: dict[str, Any]) -> dict[str, Any]:
    """Runs in a Ray worker: its process is not the engine's."""
    return {"pid": os.getpid(), "sum": sum(i * i for i in range(int(input["n"])))}


@where.step(executor="ray")
async def also_async(heavy: dict[str, Any]) -> int:
    return heavy["sum"] + 1


@where.step(executor="ray")
async def calls(ctx, input: dict[str, Any]) -> dict[str, Any]:
    """A step with ctx runs in the engine; its ctx.call(..., executor=ctx.executor) goes to Ray."""
    return {"engine": os.getpid(), "remote": await ctx.call(os.getpid, executor=ctx.executor, name="pid")}


flaky = podium.Workflow("flaky-on-ray")


@flaky.step(executor="ray", retry=RetryPolicy(max_attempts=3, initial_interval=0.01))
def sometimes(input: dict[str, Any]) -> str:
    """Fails on its first attempt (a file counts attempts): the engine retries it on Ray."""
    log = Path(input["log"])
    with log.open("a") as f:
        f.write("attempt\n")
    if len(log.read_text().splitlines()) < 2:
        raise ValueError("first attempt fails")
    return "ok"


long = podium.Workflow("long-on-ray")


@long.step(executor="ray")
def wait_for_go(input: dict[str, Any]) -> int:
    """Says it started, waits for a 'go' file (or up to two minutes), then records that it ran."""
    folder = Path(input["folder"])
    (folder / "started").write_text(str(os.getpid()))
    deadline = time.monotonic() + 120
    while not (folder / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    with (folder / "ran").open("a") as f:
        f.write(f"{os.getpid()}\n")
    return 42
