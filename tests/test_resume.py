"""Handing runs over between engines: shutdown, resume, dead owners, cross-engine cancel, pinning."""

from __future__ import annotations

import asyncio

import pytest

from podium import Client, RunStatus, StepStatus, Workflow, open_store
from podium.engine.worker import owner_alive as _owner_alive


@pytest.fixture
def shared_store(store_url):
    """One store object for memory (it lives in this process); a URL otherwise."""
    return open_store(store_url) if store_url.startswith("memory") else store_url


def _workflow(calls: list[str], gate: asyncio.Event | None = None) -> Workflow:
    wf = Workflow("handover", version="3")

    @wf.step
    async def first(input):
        calls.append("first")
        return input + 1

    @wf.step
    async def second(first):
        calls.append("second")
        if gate is not None:
            await gate.wait()
        return first * 2

    @wf.step
    async def third(second):
        calls.append("third")
        return second + 1

    return wf


async def _handed_back_mid_run(store, wf: Workflow, calls: list[str]) -> str:
    """Start a run, wait until it is inside step `second`, then stop the engine without draining:
    the run is left unfinished and unowned. Returns its id."""
    c1 = Client(store, workflows=[wf])
    await c1.open()
    handle = await c1.start(wf, 1)
    while "second" not in calls:
        await asyncio.sleep(0.01)
    await c1.close()
    return handle.id


async def test_shutdown_hands_back_and_resume_continues(shared_store):
    calls: list[str] = []
    gate = asyncio.Event()
    wf = _workflow(calls, gate)
    c1 = Client(shared_store, workflows=[wf])
    await c1.open()
    handle = await c1.start(wf, 1)
    while "second" not in calls:
        await asyncio.sleep(0.01)
    await c1.close()  # not drained: the run is handed back unfinished
    assert calls == ["first", "second"]

    gate.set()
    async with Client(shared_store, workflows=[wf], recover=False) as c2:
        run = await c2.get(handle.id)
        assert run.status is RunStatus.RUNNING and run.owner is None
        assert await c2.resume() == [handle.id]
        assert await c2.result(handle.id) == 5
    assert calls == ["first", "second", "second", "third"]  # first not redone


async def test_engine_start_recovers_runs_of_a_dead_owner(shared_store):
    calls: list[str] = []
    gate = asyncio.Event()
    wf = _workflow(calls, gate)
    c1 = Client(shared_store, workflows=[wf])
    await c1.open()
    handle = await c1.start(wf, 1)
    while "second" not in calls:
        await asyncio.sleep(0.01)
    # Simulate a crash: the process is gone but its lease is still in the store.
    for task in c1.driving.tasks():
        task.cancel()
    await asyncio.sleep(0.01)
    store = c1.store
    run = await store.get_run(handle.id)
    assert run.owner == c1.owner
    host, _, ns, _ = c1.owner.split(":")
    dead = f"{host}:999999999:{ns}:gone"  # this host and PID namespace, a pid that does not exist
    assert not _owner_alive(dead)
    await store.release_runs(c1.owner, [handle.id])
    await store.claim_runs(dead, lease_seconds=3600, limit=1, now=0.0, run_ids=[handle.id])
    gate.set()
    async with Client(shared_store, workflows=[wf]) as c2:  # recover=True: picks it up on open
        assert await c2.result(handle.id) == 5
    await c1.close()
    assert calls.count("first") == 1


async def test_live_lease_is_not_stolen(shared_store):
    calls: list[str] = []
    gate = asyncio.Event()
    wf = _workflow(calls, gate)
    async with Client(shared_store, workflows=[wf]) as c1:
        handle = await c1.start(wf, 1)
        while "second" not in calls:
            await asyncio.sleep(0.01)
        async with Client(shared_store, workflows=[wf]) as c2:
            assert await c2.resume() == []
        gate.set()
        assert await handle.result() == 5
    assert calls.count("second") == 1


async def test_cancel_from_another_client(shared_store):
    if not isinstance(shared_store, str):
        pytest.skip("cross-engine cancel goes through the store's flag, polled by the owner")
    started = asyncio.Event()
    wf = Workflow("longone")

    @wf.step
    async def wait_long():
        started.set()
        await asyncio.sleep(30)

    async with Client(shared_store, poll_interval=0.05) as owner:
        handle = await owner.start(wf)
        await asyncio.wait_for(started.wait(), 5)
        async with Client(shared_store, recover=False) as other:
            run = await other.cancel(handle.id)
        assert run.status is RunStatus.CANCELLED
        h = await owner.history(handle.id)
        assert h.step("wait_long").status is StepStatus.CANCELLED


async def test_cancel_of_an_orphaned_run_is_recorded(shared_store):
    calls: list[str] = []
    gate = asyncio.Event()
    wf = _workflow(calls, gate)
    run_id = await _handed_back_mid_run(shared_store, wf, calls)
    async with Client(shared_store, recover=False) as c2:
        run = await c2.cancel(run_id)
        assert run.status is RunStatus.CANCELLED
        assert (await c2.history(run_id)).events[-1].type == "run_cancelled"


async def test_runs_are_pinned_to_their_version(shared_store):
    calls: list[str] = []
    gate = asyncio.Event()
    wf = _workflow(calls, gate)
    run_id = await _handed_back_mid_run(shared_store, wf, calls)

    newer = Workflow("handover", version="4")

    @newer.step
    async def only():
        return "v4"

    async with Client(shared_store, workflows=[newer], recover=False) as c2:
        assert await c2.resume() == []  # version 3 is not registered: the run waits for it
        assert (await c2.get(run_id)).status is RunStatus.RUNNING
        c2.register(wf)
        gate.set()
        assert await c2.resume() == [run_id]
        assert await c2.result(run_id) == 5


async def test_queued_runs_wait_as_pending(shared_store):
    release = asyncio.Event()
    wf = Workflow("queue")

    @wf.step
    async def hold():
        await release.wait()

    async with Client(shared_store, max_concurrent_runs=1) as c:
        h1 = await c.start(wf)
        h2 = await c.start(wf)
        await asyncio.sleep(0.05)
        assert (await c.get(h2.id)).status is RunStatus.PENDING
        release.set()
        await h1.result()
        await h2.result()
        types = [e.type for e in (await c.history(h2.id)).events]
        assert types[:2] == ["run_queued", "run_started"]
