"""Review of run lineage and leases (2026-12-06, seventh session): a worker paused (SIGSTOP) with
several steps in flight (a map step's items), whose run another engine took over meanwhile. When it
wakes, the first of its writes collides with the new owner's ``run_resumed`` and is refused; none of
the others may land either (docs/durability.md: "at most one engine's events are in a run's log
after any point"). Real processes, SQLite file and PostgreSQL; the paused worker stops itself once
all its items are in flight, so no timing decides what the test sees."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import ModuleType

import pytest
from paused_workers import load_flows, proc_state, step_log, until

from podium import Client

FLOWS = textwrap.dedent(
    """
    import asyncio, os, signal
    from podium import StepContext, Workflow

    wf = Workflow("stale_map", version="1")
    RELEASE = None  # the new owner's items wait on it (an asyncio.Event)
    GO = None
    STARTED = []


    @wf.step(map="input")
    async def pay(ctx: StepContext, input):
        global GO
        note(f"pay{input}")
        if RELEASE is not None:
            await RELEASE.wait()
            return input
        GO = GO or asyncio.Event()
        STARTED.append(input)
        if len(STARTED) == 4:  # every item in flight: release them all, and stop before they go on
            GO.set()
            os.kill(os.getpid(), signal.SIGSTOP)
        await GO.wait()
        return input
    """
)

PAUSED_WORKER = textwrap.dedent(
    """
    import asyncio, os, sys
    from podium import Client
    import review_stale_flows as flows

    async def main(url: str, run_id: str) -> None:
        async with Client(url, workflows=[flows.wf], lease_seconds=1.5, poll_interval=3600) as c:  # no sweep: its writes alone meet the new owner
            await c.start(flows.wf, [1, 2, 3, 4], run_id=run_id)
            ex = c.driving.get(run_id)
            if ex is not None:
                await asyncio.shield(ex.finished)
            print("stopped driving", flush=True)
            os._exit(0)  # no hand-back on close: the run is another engine's now

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/stale.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_flows(tmp_path, monkeypatch, "review_stale_flows", FLOWS)


async def test_attack_a_paused_workers_parallel_items_write_after_the_new_owner(
    url: str, flows: ModuleType, tmp_path: Path
) -> None:
    """Failed before: the paused worker woke with four items of a map step in flight; the first
    item's completion collided with the new owner's ``run_resumed`` and was refused, but the three
    others, already scheduled, were written at the next seqs: the stale owner's events landed after
    the new owner's, and the new owner's own next write was refused in turn (it stopped driving the
    run, which then waited for its lease to run out). Now, once one of its writes was refused, an
    engine writes nothing more for the run (and a group write refused at one event of a run refuses
    that run's later events in it)."""
    (tmp_path / "paused.py").write_text(PAUSED_WORKER)
    run_id = "stale-map-run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.getcwd()])}
    a = subprocess.Popen(
        [sys.executable, str(tmp_path / "paused.py"), url, run_id], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:

        async def paused() -> bool:
            assert a.poll() is None, a.communicate()
            return proc_state(a.pid) == "T"

        await until("the worker to stop itself with four items in flight", paused)
        async with Client(url, workflows=[flows.wf], recover=False, lease_seconds=30) as b:
            run = await b.store.get_run(run_id)
            assert run is not None and run.owner and run.lease_expires_at is not None

            async def expired() -> bool:
                return time.time() > run.lease_expires_at + 0.1  # type: ignore[operator]

            await until("the paused worker's lease to expire", expired)
            flows.RELEASE = asyncio.Event()
            assert await b.take_over([run_id]) == [run_id]

            async def b_runs_all() -> bool:
                return sum(pid == os.getpid() for _, pid in step_log(tmp_path)) == 4

            await until("the new owner to start the four items", b_runs_all)
            before = await b.store.load_events(run_id)
            resumed = max(e.seq for e in before if e.type == "run_resumed")
            assert before[-1].seq == resumed  # the new owner has written nothing since
            os.kill(a.pid, signal.SIGCONT)  # the paused worker's items go on and write
            out, err = await asyncio.to_thread(a.communicate, timeout=60)
            assert b"stopped driving" in out, err.decode()[-3000:]
            after = [(e.seq, e.type, e.step, e.index) for e in await b.store.load_events(run_id) if e.seq > resumed]
            assert after == [], f"the stale owner's writes landed after the new owner's run_resumed: {after}"
            flows.RELEASE.set()
            assert await b.result(run_id, timeout=20) == [1, 2, 3, 4]
    finally:
        if a.poll() is None:
            os.kill(a.pid, signal.SIGCONT)
            a.kill()
            a.wait()
        flows.RELEASE = None


LATER_FLOWS = textwrap.dedent(
    """
    import asyncio, os, signal
    from podium import StepContext, Workflow

    wf = Workflow("stale_later", version="1")
    RELEASE = None  # the new owner's items wait on it (an asyncio.Event)
    GO = None
    TASKS = {}


    @wf.step(map="input")
    async def pay(ctx: StepContext, input):
        global GO
        note(f"pay{input}")
        if RELEASE is not None:
            await RELEASE.wait()
            return input
        GO = GO or asyncio.Event()
        TASKS[input] = asyncio.current_task()
        if len(TASKS) == 4:  # every item in flight: release them all, and stop before they go on
            GO.set()
            os.kill(os.getpid(), signal.SIGSTOP)
        await GO.wait()
        if input != 1:
            # The others finish in the turns after item 1's completion was refused and its task
            # ended, before the map step hears of it and cancels them: each write in a new group.
            while not TASKS[1].done():
                await asyncio.sleep(0)
        return input
    """
)

LATER_WORKER = PAUSED_WORKER.replace("review_stale_flows", "review_stale_later_flows").replace(
    '        print("stopped driving", flush=True)',
    """        # the writes its items made after the refusal land (or are refused) before it exits
        for name in ("appends", "audited", "writes"):
            group = getattr(c.store, name, None)
            while group is not None and group.gathering:
                await asyncio.sleep(0.01)
        print("stopped driving", flush=True)""",
)


@pytest.fixture
def later_flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_flows(tmp_path, monkeypatch, "review_stale_later_flows", LATER_FLOWS)


async def test_attack_a_stale_owners_item_finishing_in_a_later_turn_writes_after_the_new_owner(
    url: str, later_flows: ModuleType, tmp_path: Path
) -> None:
    """The "stale owner's write made in a later turn" the seventh session's lineage review suspected:
    failed before on SQLite and PostgreSQL. The paused worker's first item's completion is refused
    (the new owner's ``run_resumed`` holds its seq); the three others finish in the next turns of
    the loop, before the executor cancels them, and each wrote its completion at the next free seq,
    after the new owner's events. Now a run's write refused makes the engine write nothing more for
    it (the executor remembers the refusal; the store's group refuses the run's writes queued
    behind the refused one, and those made before its caller heard of it)."""
    (tmp_path / "paused.py").write_text(LATER_WORKER)
    run_id = "stale-later-run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.getcwd()])}
    a = subprocess.Popen(
        [sys.executable, str(tmp_path / "paused.py"), url, run_id], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:

        async def paused() -> bool:
            assert a.poll() is None, a.communicate()
            return proc_state(a.pid) == "T"

        await until("the worker to stop itself with four items in flight", paused)
        async with Client(url, workflows=[later_flows.wf], recover=False, lease_seconds=30) as b:
            run = await b.store.get_run(run_id)
            assert run is not None and run.owner and run.lease_expires_at is not None

            async def expired() -> bool:
                return time.time() > run.lease_expires_at + 0.1  # type: ignore[operator]

            await until("the paused worker's lease to expire", expired)
            later_flows.RELEASE = asyncio.Event()
            assert await b.take_over([run_id]) == [run_id]

            async def b_runs_all() -> bool:
                return sum(pid == os.getpid() for _, pid in step_log(tmp_path)) == 4

            await until("the new owner to start the four items", b_runs_all)
            before = await b.store.load_events(run_id)
            resumed = max(e.seq for e in before if e.type == "run_resumed")
            assert before[-1].seq == resumed  # the new owner has written nothing since
            os.kill(a.pid, signal.SIGCONT)
            out, err = await asyncio.to_thread(a.communicate, timeout=60)
            assert b"stopped driving" in out, err.decode()[-3000:]
            after = [(e.seq, e.type, e.step, e.index) for e in await b.store.load_events(run_id) if e.seq > resumed]
            assert after == [], f"the stale owner's writes landed after the new owner's run_resumed: {after}"
            later_flows.RELEASE.set()
            assert await b.result(run_id, timeout=20) == [1, 2, 3, 4]
    finally:
        if a.poll() is None:
            os.kill(a.pid, signal.SIGCONT)
            a.kill()
            a.wait()
        later_flows.RELEASE = None
