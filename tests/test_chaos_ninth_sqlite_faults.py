"""Chaos review (ninth session): a SQLite store whose disk fills up, or whose write lock another
process holds past the busy timeout.

The full disk is made real for one process: a subprocess caps the size of the files it writes
(``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored, so a write past the cap fails with ``EFBIG`` as one on
a full disk fails with ``ENOSPC``) and starts runs until the store refuses. Then, without the cap,
the file must be intact, every acknowledged run must be there and finish, and a step whose
completion was written before must not run again."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from paused_workers import load_flows, until

from podium import Client, RunStatus, StoreError

FLOWS = textwrap.dedent(
    """
    import os
    from podium import StepContext, Workflow

    wf = Workflow("disk_full", version="1")


    @wf.step
    async def one(ctx: StepContext, input):
        note(f"one:{ctx.run_id}")
        return "x" * 20_000  # fills the WAL quickly


    @wf.step
    async def two(ctx: StepContext, one):
        note(f"two:{ctx.run_id}")
        return len(one)
    """
)

FILLER = textwrap.dedent(
    """
    import asyncio, json, os, resource, signal, sys
    from podium import Client
    import disk_full_flows

    async def main(url: str, path: str) -> None:
        acked, error = [], None
        async with Client(url, workflows=[disk_full_flows.wf]) as c:
            sizes = [os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p)]
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the cap fails (EFBIG), as on a full disk
            resource.setrlimit(resource.RLIMIT_FSIZE, (max(sizes) + 150_000, resource.RLIM_INFINITY))
            for i in range(1000):
                try:
                    acked.append((await c.start(disk_full_flows.wf, i)).id)
                except BaseException as exc:
                    error = {"types": [k.__name__ for k in type(exc).__mro__], "message": str(exc)}
                    break
                await asyncio.sleep(0)  # the runs started go on meanwhile
            print(json.dumps({"acked": acked, "error": error}), flush=True)
            os._exit(0)  # as an operator stopping a process whose disk is full: no clean close

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


@pytest.fixture
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_flows(tmp_path, monkeypatch, "disk_full_flows", FLOWS)


def _completed_steps(path: Path) -> set[tuple[str, str]]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT run_id, step FROM events WHERE type = 'step_completed'").fetchall()
    return {(r, s) for r, s in rows}


async def test_a_full_disk_fails_clearly_loses_nothing_acknowledged_and_resumes(flows: ModuleType, tmp_path: Path) -> None:
    """Failed before: SQLite rolled the failed transaction back by itself, and the store's own
    ROLLBACK then raised ``sqlite3.OperationalError: cannot rollback - no transaction is active``,
    which hid the cause; the raw driver error reached the caller of ``start`` (and a run's step
    write stopped the run, left leased: "engine error")."""
    path = tmp_path / "full.db"
    url = f"sqlite:///{path}"
    (tmp_path / "filler.py").write_text(FILLER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, str(tmp_path / "filler.py"), url, str(path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    error, acked = out["error"], out["acked"]
    assert error is not None and acked, out
    assert "StoreError" in error["types"], error  # not a raw driver error
    assert "no transaction is active" not in error["message"], error["message"]
    assert str(path) in error["message"] and "free space on its disk" in error["message"], error["message"]
    assert "no transaction is active" not in done.stderr and "engine error" not in done.stderr, done.stderr[-3000:]

    with sqlite3.connect(path) as db:  # no torn file
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for rid, status in db.execute("SELECT id, status FROM runs"):
            if status == "completed":  # a run marked completed has both its steps written
                steps = {s for (s,) in db.execute("SELECT step FROM events WHERE run_id = ? AND type = 'step_completed'", (rid,))}
                assert steps == {"one", "two"}, (rid, steps)
    before = _completed_steps(path)
    first = (tmp_path / "steps.log").read_text().splitlines()

    async with Client(url, workflows=[flows.wf]) as c:  # resumes what the full disk stopped
        for rid in acked:  # every start acknowledged is stored, and finishes
            assert (await c.wait(rid, timeout=60)).status is RunStatus.COMPLETED
    again = (tmp_path / "steps.log").read_text().splitlines()[len(first):]
    redone = {tuple(line.split()[0].split(":")[::-1]) for line in again} & before
    assert not redone, redone  # a step whose completion was written is not run again


async def test_a_write_lock_held_past_the_busy_timeout_fails_clearly_and_the_run_goes_on(tmp_path: Path) -> None:
    """Another process holds the file's write lock longer than the busy timeout (shortened here to
    0.05 s on the engine's connection): a start says so, and a run whose step could not be written
    is handed back and finishes once the lock is gone (before: "engine error", the run left leased
    to a live engine until its lease ran out)."""
    from podium import Workflow

    wf = Workflow("locked", version="1")
    go = asyncio.Event()

    @wf.step
    async def one(input: Any) -> Any:
        await go.wait()
        return input

    @wf.step
    async def two(one: Any) -> Any:
        return one + 1

    path = tmp_path / "locked.db"
    async with Client(f"sqlite:///{path}", workflows=[wf], lease_seconds=120) as c:
        run_id = (await c.start(wf, 1)).id
        await asyncio.sleep(0)  # the next start alone in its turn (a burst's goes through the start log)
        c.store.db.execute("PRAGMA busy_timeout=50")  # type: ignore[attr-defined]
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process's write transaction
        try:
            with pytest.raises(StoreError) as info:
                await c.start(wf, 2)
            assert "database is locked" in str(info.value) and "busy timeout" in str(info.value)
            go.set()  # step one ends; its completion cannot be written
            while not c.claims.store_failed:
                await asyncio.sleep(0.01)
        finally:
            other.execute("ROLLBACK")
            other.close()
        c.store.db.execute("PRAGMA busy_timeout=10000")  # type: ignore[attr-defined]
        assert (await c.wait(run_id, timeout=60)).status is RunStatus.COMPLETED
        assert (await c.result(run_id)) == 2


HOLDER = textwrap.dedent(
    """
    import asyncio, logging, sys
    from podium import Client
    import disk_full_flows

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")

    async def main(url: str) -> None:
        async with Client(url, workflows=[disk_full_flows.wf], poll_interval=0.05) as c:
            ids = [(await c.start(disk_full_flows.wf, i)).id for i in range(3)]
            for rid in ids:
                await c.wait(rid)
            print(" ".join(ids), flush=True)
            stop = asyncio.Event()
            work = asyncio.create_task(c.work(stop, concurrency=4))  # a worker: it claims every poll
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            stop.set()
            await work
        print("closed", flush=True)

    asyncio.run(main(sys.argv[1]))
    """
)


async def test_a_wal_file_deleted_under_a_running_worker_is_written_back(flows: ModuleType, tmp_path: Path) -> None:
    """Someone deletes the store's -wal and -shm files (to free space, or cleaning up) while a
    worker has the store open. Before: the worker went on writing into the deleted file; another
    process opening the store saw none of the runs the worker had acknowledged (``NotFound``), and
    a crash of the worker would have lost them. Now the worker notices within a second, writes what
    it holds back into the database file, says so, and opens the store again."""
    path = tmp_path / "wal.db"
    url = f"sqlite:///{path}"
    (tmp_path / "holder.py").write_text(HOLDER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    holder = subprocess.Popen(
        [sys.executable, str(tmp_path / "holder.py"), url],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdin is not None and holder.stderr is not None
        ids = holder.stdout.readline().split()
        assert len(ids) == 3, ids
        for suffix in ("-wal", "-shm"):
            os.remove(f"{path}{suffix}")

        async def reopened() -> bool:
            assert holder.poll() is None
            return os.path.exists(f"{path}-wal")

        await until("the worker opening the store again", reopened, timeout=30)
        async with Client(url, workflows=[flows.wf], recover=False) as c:
            for rid in ids:  # before: NotFound, the runs were only in the deleted file
                assert (await c.get(rid)).status is RunStatus.COMPLETED
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "closed"
        said = holder.stderr.read()
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert "its -wal file was deleted or replaced" in said and "Never delete" in said, said
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
