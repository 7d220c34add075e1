"""Review of three changes of 2026-12-07: the ``gc`` setting (podium/engine/gcpace.py), erasure
refused while a stopped engine's start log waits (podium/storage/_sqlite_erase.py), and the record
of a run that ended here kept for ``result()``/``wait()`` (podium/engine/driving.py). Each test
failed before its fix (docs/status.md, "Review of the gc pace, erasure and ended records")."""

from __future__ import annotations

import asyncio
import fcntl
import gc
import os
import subprocess
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from burst_helpers import dead_log, dead_run, env_with, flow_fixture, starts_folder  # noqa: F401 (flow_fixture: the fixture 'flow')

from podium import Client, Workflow
from podium.engine import driving, worker
from podium.errors import NotFound, StoreError
from podium.memory import Memory
from podium.storage import _sqlite_erase

EMAIL = "ann@example.com"


@pytest.fixture(autouse=True)
def thresholds() -> Iterator[None]:
    found = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # CPython's defaults, whatever the runner set
    yield
    gc.set_threshold(*found)


def _blocked(gate: asyncio.Event) -> Workflow:
    wf = Workflow("blocked")

    @wf.step
    async def wait(input: int) -> int:
        await gate.wait()
        return input

    return wf


# -- the gc pace ----------------------------------------------------------------------------------


class Node:
    pass


async def test_attack_cycles_left_by_runs_one_at_a_time_are_collected_at_pythons_pace(tmp_path: Path) -> None:
    """Each run's step leaves a small cycle holding a buffer (a parser's tree, an ORM session): at a
    young threshold of 20,000 thousands of them waited for a collection (2,000 runs of 256 KiB
    each: 545 MB of RSS at the peak against 85 MB), though one run at a time is nowhere near the
    thousands of live runs the raised threshold is for."""
    alive: weakref.WeakSet[Node] = weakref.WeakSet()
    wf = Workflow("cycles")

    @wf.step
    async def make(input: int) -> int:
        n = Node()
        n.me = n  # type: ignore[attr-defined]
        alive.add(n)
        return input

    async with Client(f"sqlite:///{tmp_path}/c.db") as c:
        most = 0
        for i in range(1500):
            await c.run(wf, i)
            most = max(most, len(alive))
    assert most < 1000, most


async def test_attack_a_close_cancelled_half_way_does_not_leave_the_thresholds_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driving, "BUSY", 3, raising=False)
    gate = asyncio.Event()
    wf = _blocked(gate)
    c = Client(f"sqlite:///{tmp_path}/c.db")
    await c.open()
    for i in range(3):
        await c.start(wf, i)
    await c.bursts.landed(strict=False)
    assert gc.get_threshold()[0] > 700  # many runs live: paced

    async def hangs() -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(c.bursts, "close", hangs)
    closing = asyncio.create_task(c.close())
    await asyncio.sleep(0)
    closing.cancel()  # a shutdown that gives up on closing (a timeout, ^C)
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert gc.get_threshold() == (700, 10, 10)
    gate.set()
    monkeypatch.undo()
    await c.close()


async def test_attack_a_client_whose_open_fails_half_way_leaves_nothing_raised_or_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = asyncio.Event()
    wf = _blocked(gate)
    monkeypatch.setattr(driving, "BUSY", 2, raising=False)
    async with Client(f"sqlite:///{tmp_path}/c.db", workflows=[wf]) as c:
        for i in range(2):
            await c.start(wf, i)
        await c.bursts.landed(strict=False)
    # two runs left unfinished, resumed by the next client, whose open then fails

    seen = []

    async def recover_then_fail(client: Client) -> None:
        await real(client)
        seen.append((len(client.driving), gc.get_threshold()[0]))
        raise StoreError("the store went away")

    real = worker.recover
    monkeypatch.setattr(worker, "recover", recover_then_fail)
    client = Client(f"sqlite:///{tmp_path}/c.db", workflows=[wf])
    with pytest.raises(StoreError, match="went away"):
        await client.open()
    assert seen == [(2, 20_000)]  # it drove both, paced
    assert gc.get_threshold() == (700, 10, 10)
    assert not client.driving  # its runs handed back, its store closed
    async with Client(f"sqlite:///{tmp_path}/c.db", recover=False) as c:
        assert [r.owner for r in await c.list()] == [None, None]
    gate.set()


# -- erasure and start logs -------------------------------------------------------------------------


async def test_attack_a_log_no_engine_here_can_replay_is_named_as_such_with_a_fix_that_works(
    tmp_path: Path,
) -> None:
    """A file whose lines are signed with a key nobody here holds (planted by someone who may write
    the folder, or left by an engine with another key) is left in place by every replay: the
    erasure's advice ("open an engine, then erase again") could never work, every erasure was
    refused for good."""
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    async with Client(url):
        pass
    folder = starts_folder(db)
    folder.mkdir(mode=0o700, exist_ok=True)
    (folder / "planted-1.log").write_text("elsewhere:0123\tAAAA\n")
    async with Client(url):  # an engine opens the store: the file is left for one that holds that key
        pass
    assert (folder / "planted-1.log").exists()
    async with Memory(url, embedder="hash:64") as mem:
        with pytest.raises(StoreError) as refused:
            await mem.forget("customer:42", values=[EMAIL])
    message = str(refused.value)
    assert "planted-1.log" in message and "does not hold" in message and "move" in message


async def test_podium_memory_forget_replays_a_stopped_engines_log_then_erases_its_runs_too(
    tmp_path: Path, flow: Workflow
) -> None:
    """The command line's erasure opens an engine before it erases (its permission check): the log
    is replayed there, and the erasure then reaches the runs it held."""
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    async with Client(url) as c:
        await c.run(flow, {"n": 1})
        run = dead_run("01waiting000000000000000")
        run.input = f'{{"n": 3, "email": "{EMAIL}"}}'
        log = dead_log(db, c.store, [run])
    env = {**env_with(tmp_path), "PODIUM_DB": url, "PODIUM_EMBEDDER": "hash:64"}
    proc = subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", "memory", "forget", "customer:42",
         "--value", EMAIL, "--yes"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert not log.exists()
    async with Client(url, recover=False) as c:
        stored = await c.get("01waiting000000000000000")
        assert EMAIL not in (stored.input or "")


# -- ended records ----------------------------------------------------------------------------------


def _flow() -> Workflow:
    wf = Workflow("echo")

    @wf.step
    async def echo(input: dict) -> str:
        return f"sent to {input['email']}"

    return wf


async def test_attack_a_result_read_after_an_erasure_in_this_process_does_not_show_the_erased_data(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/e.db"
    async with Client(url) as c:
        h = await c.start(_flow(), {"email": EMAIL})
        await c.driving.settled(h.id)
        async with Memory(url, embedder="hash:64") as mem:
            await mem.forget("customer:42", values=[EMAIL])
        assert EMAIL not in (await c.store.get_run(h.id)).output  # type: ignore[union-attr,operator]
        assert EMAIL not in await h.result()


async def test_attack_a_result_awaited_while_running_leaves_no_record_kept_behind(tmp_path: Path) -> None:
    """The record was kept even when the result was taken from the live executor: a second
    ``result()`` within 10 s, after an erasure, showed the erased data."""
    async with Client(f"sqlite:///{tmp_path}/e.db") as c:
        h = await c.start(_flow(), {"email": EMAIL})
        assert EMAIL in await h.result()
        assert c.driving.ended(h.id) is None


async def test_attack_the_record_of_a_run_cancelled_from_another_client_is_the_stored_one(
    tmp_path: Path,
) -> None:
    gate = asyncio.Event()
    wf = _blocked(gate)
    url = f"sqlite:///{tmp_path}/x.db"
    async with (
        Client(url, workflows=[wf], poll_interval=0.02) as a,
        Client(url, workflows=[wf], recover=False) as b,
    ):
        h = await a.start(wf, 1)
        await a.bursts.landed(strict=False)
        cancelling = asyncio.create_task(b.cancel(h.id))
        await a.driving.settled(h.id)
        got = await a.wait(h.id)
        await cancelling
        assert got == await a.store.get_run(h.id)
        assert got.cancel_requested


async def test_attack_the_record_of_a_run_resumed_by_a_labelled_worker_is_the_stored_one(
    tmp_path: Path,
) -> None:
    wf = Workflow("gpu-job")

    @wf.step
    async def prepare() -> list[int]:
        return [1, 2, 3]

    @wf.step(labels=["gpu"])
    async def train(prepare: list[int]) -> int:
        return sum(prepare)

    url = f"sqlite:///{tmp_path}/g.db"
    async with Client(url, workflows=[wf], labels=[]) as cpu:
        h = await cpu.start(wf)
        for _ in range(500):
            run = await cpu.get(h.id)
            if run.labels == "gpu" and run.owner is None:
                break
            await asyncio.sleep(0.01)
        async with Client(url, workflows=[wf], labels=["gpu"], recover=False) as gpu:
            assert await gpu.resume() == [h.id]
            await gpu.driving.settled(h.id)
            got = await gpu.wait(h.id)
            assert got == await gpu.store.get_run(h.id)
            assert got.labels is None


async def test_attack_the_record_of_a_run_that_waited_for_a_slot_has_its_start_time(tmp_path: Path) -> None:
    """A run started while every slot was taken is created pending and started once admitted: its
    ``started_at`` was written to the store, not to the record given."""
    wf = _flow()
    async with Client(f"sqlite:///{tmp_path}/q.db", max_concurrent_runs=1) as c:
        handles = [await c.start(wf, {"email": f"{i}@example.com"}) for i in range(3)]
        for h in handles:
            await c.driving.settled(h.id)
        for h in handles:
            got = await c.wait(h.id)
            assert got == await c.store.get_run(h.id)
            assert got.started_at is not None


async def test_attack_a_log_an_engine_holds_and_does_not_commit_does_not_let_an_erasure_miss_its_runs(
    tmp_path: Path, flow: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log whose lock is held was taken for a live engine's, committed within a turn, and the
    erasure went on beside it. But the lock is also held by an engine whose commits keep failing (a
    full disk, the database locked past its timeout) and by another engine replaying a dead one's
    log: the runs in it were created after the erasure, with the subject's data. Now the erasure
    waits for such a log to go (bounded), else refuses, naming it."""
    monkeypatch.setattr(_sqlite_erase, "LIVE_WAIT", 0.05, raising=False)
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    async with Client(url) as c:
        await c.run(flow, {"n": 1})
        run = dead_run("01held00000000000000000")
        run.input = f'{{"n": 3, "email": "{EMAIL}"}}'
        log = dead_log(db, c.store, [run])
    held = os.open(log, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)  # its engine, alive, not committing
    try:
        async with Memory(url, embedder="hash:64") as mem:
            with pytest.raises(StoreError) as refused:
                await mem.forget("customer:42", values=[EMAIL])
    finally:
        os.close(held)  # the engine goes; the next one replays its log
    assert log.name in str(refused.value) and "erase again" in str(refused.value)
    async with Client(url, recover=False) as c:
        assert (await c.get("01held00000000000000000")).input is not None
    async with Memory(url, embedder="hash:64") as mem:
        await mem.forget("customer:42", values=[EMAIL])
    async with Client(url, recover=False) as c:
        assert EMAIL not in ((await c.get("01held00000000000000000")).input or "")


async def test_an_erasure_waits_for_a_held_log_to_be_committed_then_goes_on(
    tmp_path: Path, flow: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    async with Client(url) as c:
        done = await c.start(flow, {"n": 1, "email": EMAIL})
        await done.result()
        log = dead_log(db, c.store, [dead_run("01live00000000000000000")])
    held = os.open(log, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)
    looks = []
    real = _sqlite_erase.SQLiteErasure._start_logs

    def engine_commits_meanwhile(self: _sqlite_erase.SQLiteErasure) -> object:
        looks.append(1)
        if len(looks) == 2:  # its runs committed, the engine deletes its log (StartLog.done)
            os.unlink(log)
            os.close(held)
        return real(self)

    monkeypatch.setattr(_sqlite_erase.SQLiteErasure, "_start_logs", engine_commits_meanwhile)
    async with Memory(url, embedder="hash:64") as mem:
        erasure = await mem.forget("customer:42", values=[EMAIL])
    assert len(looks) == 2 and erasure.counts["runs_redacted"] >= 1
    async with Client(url, recover=False) as c:
        assert EMAIL not in ((await c.get(done.id)).input or "")


async def test_attack_a_process_forked_while_the_pace_is_raised_starts_at_pythons_pace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step's ``multiprocessing`` workers (forked) inherited the raised threshold and no client
    to put it back: their own work kept its cycles for 20,000 allocations, for their whole life."""
    monkeypatch.setattr(driving, "BUSY", 3, raising=False)
    gate = asyncio.Event()
    async with Client(f"sqlite:///{tmp_path}/f.db") as c:
        for i in range(3):
            await c.start(_blocked(gate), i)
        await c.bursts.landed(strict=False)
        assert gc.get_threshold()[0] > 700
        pid = os.fork()
        if pid == 0:  # the child: only reports what it found
            os._exit(0 if gc.get_threshold() == (700, 10, 10) else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert gc.get_threshold()[0] > 700  # the parent is still busy
        gate.set()
    assert gc.get_threshold() == (700, 10, 10)


async def test_attack_a_result_read_after_its_run_was_deleted_in_this_process_is_not_found(
    tmp_path: Path,
) -> None:
    """Retention (``podium memory prune``, ``Store.delete_runs``) deleted the run; ``result()``
    within 10 s of its end still gave its record and output."""
    async with Client(f"sqlite:///{tmp_path}/d.db") as c:
        h = await c.start(_flow(), {"email": EMAIL})
        await c.driving.settled(h.id)
        assert await c.store.delete_runs([h.id]) == [h.id]
        with pytest.raises(NotFound):
            await h.result()


async def test_a_start_log_folder_that_cannot_be_read_refuses_the_erasure_saying_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another user's folder (their engine made it, 0700): the erasure raised a bare PermissionError."""
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    async with Client(url):
        pass
    folder = starts_folder(db)
    folder.mkdir(mode=0o700, exist_ok=True)
    listdir = os.listdir

    def unreadable(path: object = ".") -> list[str]:
        if str(path) == str(folder):
            raise PermissionError(13, "Permission denied", str(path))
        return listdir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(_sqlite_erase.os, "listdir", unreadable)
    async with Memory(url, embedder="hash:64") as mem:
        with pytest.raises(StoreError, match="cannot be read") as refused:
            await mem.forget("customer:42", values=[EMAIL])
    assert str(folder) in str(refused.value) and "erase again" in str(refused.value)
