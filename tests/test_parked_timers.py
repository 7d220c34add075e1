"""Timers of parked runs: an engine holds in memory only those due soon (the others are read from
the store as they come close), and timers fire after the engine that parked them is gone."""

from __future__ import annotations

import asyncio
import time

from podium import Client, RunStatus, StepContext, Workflow


def sleeper(seconds: float) -> Workflow:
    wf = Workflow("sleeper")

    @wf.step
    async def nap(ctx: StepContext) -> float:
        await ctx.sleep(seconds)
        return time.time()

    return wf


async def _status(client: Client, run_id: str, status: RunStatus, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (await client.get(run_id)).status is not status:
        assert time.monotonic() < deadline, f"run {run_id} never became {status.value}"
        await asyncio.sleep(0.02)


async def test_a_timer_beyond_the_horizon_is_not_held_yet_fires(store_url):
    wf = sleeper(1.5)
    client = Client(store_url, workflows=[wf], poll_interval=0.05)
    client.timers.horizon = 0.5  # timers due later than 0.5 s are left in the store for now
    async with client:
        started = time.time()
        handle = await client.start(wf)
        await _status(client, handle.id, RunStatus.WAITING)
        assert handle.id not in client.timers  # parked: nothing of it in memory
        woke = await client.result(handle.id, timeout=10)
        assert woke >= started + 1.5


async def test_timers_fire_after_a_restart(store_url):
    if store_url == "memory://":
        return  # a memory store does not outlive its engine
    wf = sleeper(1.0)
    async with Client(store_url, workflows=[wf], poll_interval=0.05) as first:
        handles = [await first.start(wf) for _ in range(5)]
        for h in handles:
            await _status(first, h.id, RunStatus.WAITING)
        due = (await first.get(handles[0].id)).wake_at
        assert due is not None
    # The engine that parked them is gone; a new one must wake every run when its timer falls due.
    async with Client(store_url, workflows=[wf], poll_interval=0.05) as second:
        for h in handles:
            woke = await second.result(h.id, timeout=15)
            assert woke >= due - 0.01
        assert not second.timers
