"""Timers of parked runs: an engine holds in memory only those due soon (the others are read from
the store as they come close), and timers fire after the engine that parked them is gone."""

from __future__ import annotations

import asyncio
import time

import pytest

from podium import Client, RunStatus, StepContext, Workflow
from podium.engine import waits, worker


@pytest.fixture
def short_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    """These runs sleep about a second: held in memory they would never park (waits.HOLD)."""
    monkeypatch.setattr(waits, "HOLD", 0.2)
    monkeypatch.setattr(worker, "EARLY", 0.2)


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


async def test_a_timer_beyond_the_horizon_is_not_held_yet_fires(store_url, short_hold):
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


async def test_timers_fire_after_a_restart(store_url, short_hold):
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


def until(at: float) -> Workflow:
    wf = Workflow("until")

    @wf.step
    async def nap(input: dict, ctx: StepContext) -> float:
        await ctx.sleep(max(0.0, input["at"] - time.time()))
        return time.time()

    return wf


async def test_timers_due_at_one_instant_are_claimed_before_it_and_go_on_at_it(store_url, monkeypatch):
    """A burst of timers due together: each run is claimed and replayed up to its sleep shortly
    before the instant (worker.EARLY), waits there in memory, and goes on at the instant, never
    before it (claiming a thousand runs at the instant itself made the last ones seconds late)."""
    from podium import EventType

    monkeypatch.setattr(worker, "EARLY", 1.5)  # shorter than the defaults, to keep the test short
    monkeypatch.setattr(waits, "HOLD", 2.0)
    wf = until(0)
    async with Client(store_url, workflows=[wf], poll_interval=0.05) as client:
        at = time.time() + worker.EARLY + waits.HOLD + 1.0  # parks first: due later than HOLD
        handles = [await client.start(wf, {"at": at}) for _ in range(20)]
        for h in handles:
            await _status(client, h.id, RunStatus.WAITING)
        for h in handles:
            went_on = await client.result(h.id, timeout=30)
            assert went_on >= at  # a timer never fires early
            resumed = [e.ts for e in await client.store.load_events(h.id) if e.type == EventType.RUN_RESUMED]
            assert resumed and resumed[-1] < at  # claimed and replayed before it was due


def answer_within(timeout: float) -> Workflow:
    wf = Workflow("answer")

    @wf.step
    async def ask(ctx: StepContext) -> str:
        return await ctx.wait_for("go", timeout=timeout, default="timed out")

    return wf


async def _waiting_step(client: Client, run_id: str) -> None:
    from podium import EventType

    deadline = time.monotonic() + 20
    while not any(e.type == EventType.STEP_WAITING for e in await client.store.load_events(run_id)):
        assert time.monotonic() < deadline, "the step never reached its wait"
        await asyncio.sleep(0.02)


async def test_a_signal_ends_a_wait_held_in_memory_at_once(store_url, monkeypatch):
    monkeypatch.setattr(waits, "HOLD", 60.0)  # a 30 s timeout is held in memory, not parked
    wf = answer_within(30)
    async with Client(store_url, workflows=[wf], poll_interval=0.05) as client:
        t0 = time.monotonic()
        handle = await client.start(wf)
        await _waiting_step(client, handle.id)
        assert (await client.get(handle.id)).status is RunStatus.RUNNING  # held, not parked
        await client.signal(handle.id, "go", "yes")
        assert await client.result(handle.id, timeout=30) == "yes"
        assert time.monotonic() - t0 < 30  # the signal, not the timeout, ended the wait


async def test_a_signal_from_another_process_ends_a_held_wait(tmp_path, monkeypatch):
    monkeypatch.setattr(waits, "HOLD", 60.0)
    db = f"sqlite:///{tmp_path}/shared.db"
    wf = answer_within(30)
    stop = asyncio.Event()
    async with Client(db, workflows=[wf], poll_interval=0.05) as engine:
        working = asyncio.ensure_future(engine.work(stop))
        async with Client(db, workflows=[wf], execute=False) as api:
            t0 = time.monotonic()
            handle = await api.start(wf)
            await _waiting_step(api, handle.id)
            await api.signal(handle.id, "go", "yes")  # the engine's sweep reads it
            assert await api.result(handle.id, timeout=30) == "yes"
            assert time.monotonic() - t0 < 30
        stop.set()
        await asyncio.wait_for(working, 30)


async def test_a_workflow_paused_during_a_held_wait_does_not_go_on_until_the_switch_is_cleared(store_url, monkeypatch):
    """A wait held in memory is a parked wait that did not park: a kill switch set meanwhile stops
    the step at the end of the wait, as it would have stopped the parked run when it woke."""
    monkeypatch.setattr(waits, "HOLD", 60.0)
    after: list[float] = []
    wf = Workflow("paused-sleeper")

    @wf.step
    async def nap(ctx: StepContext) -> str:
        await ctx.sleep(0.5)
        after.append(time.time())  # the side effect after the timer
        return "woke"

    async with Client(store_url, workflows=[wf], poll_interval=0.05) as client:
        handle = await client.start(wf)
        await _waiting_step(client, handle.id)
        await client.set_switch("workflow", "paused-sleeper", reason="incident")
        await _status(client, handle.id, RunStatus.WAITING)  # parked by the switch at the wait's end
        assert after == []
        await client.clear_switch("workflow", "paused-sleeper")
        await client.resume()
        assert await client.result(handle.id, timeout=20) == "woke"
        assert len(after) == 1


async def test_a_signal_stored_before_a_held_deadline_is_not_answered_with_the_default(store_url, monkeypatch):
    """Attack: a wait held in memory (waits.HOLD) looked only at the signals its engine last read
    (the sweep, every poll_interval): a signal another process stored before the deadline, but
    after that read, was answered with the timed-out default (an approval decided in time, audited
    as approved, went on as if nobody had decided). The deadline reads the store's signals once
    more before it times the wait out."""
    if store_url == "memory://":
        return  # another process needs a shared store
    monkeypatch.setattr(waits, "HOLD", 60.0)
    wf = answer_within(2.0)
    async with Client(store_url, workflows=[wf], poll_interval=30) as engine:  # no sweep before the deadline
        handle = await engine.start(wf)
        await _waiting_step(engine, handle.id)
        assert (await engine.get(handle.id)).status is RunStatus.RUNNING  # held, not parked
        async with Client(store_url, workflows=[wf], execute=False) as api:
            await api.signal(handle.id, "go", "yes")  # stored well before the deadline
        assert await engine.result(handle.id, timeout=30) == "yes"


async def test_a_sleep_of_nan_seconds_from_the_run_input_fails_the_step_clearly():
    """Attack: a run input that makes a step sleep NaN seconds held its run (and a slot) forever,
    never due and never failing. It is a clear, non-retried error instead. (A NaN in the run input
    itself is refused when the run starts, since the eighth session; a step can still compute one.)"""
    from podium import InputValidationError, RunFailed

    wf = Workflow("nan-sleep")

    @wf.step
    async def nap(input: dict, ctx: StepContext) -> str:
        await ctx.sleep(float(input["s"]))
        return "woke"

    async with Client("memory://", workflows=[wf], poll_interval=0.05) as client:
        with pytest.raises(InputValidationError, match="input.s is NaN"):
            await client.start(wf, {"s": float("nan")})
        handle = await client.start(wf, {"s": "nan"})
        with pytest.raises(RunFailed, match="not a number of seconds"):
            await client.result(handle.id, timeout=20)
