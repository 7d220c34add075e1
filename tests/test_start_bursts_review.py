"""Review of the start log (podium/storage/_startlog.py, podium/engine/bursts.py): attacks by
someone who can write the ``-starts`` folder but holds no audit key, and the start log failing to
be written in the middle of a burst. Real SQLite; real subprocesses where a process must hang or
die."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from burst_helpers import burst_script, dead_log, dead_run, env_with, flow_fixture, starts_folder  # noqa: F401 (flow_fixture: the fixture 'flow')

import podium
from podium import Client, Workflow
from podium.memory._lifecycle import _prune_record


def _genuine_log(db: Path, store: podium.storage.Store, rid: str) -> Path:
    """A start log as an engine that stopped leaves it: one run, signed with the store's key."""
    return dead_log(db, store, [dead_run(rid)])


async def test_attack_an_old_genuine_line_does_not_bring_back_a_run_that_was_deleted(
    tmp_path: Path, flow: Workflow
) -> None:
    db = tmp_path / "p.db"
    async with Client(f"sqlite:///{db}") as c:
        await c.run(flow, {"n": 1})
        path = _genuine_log(db, c.store, "old-1")
    kept = tmp_path / "kept.log"
    shutil.copy(path, kept)  # someone who can read the folder keeps a copy of a genuine line
    async with Client(f"sqlite:///{db}", workflows=[flow]) as c:
        assert await c.result("old-1") == 6  # replayed, resumed, finished
        pruned = await c.store.delete_runs(["old-1"], record=_prune_record(time.time() + 1, "local"))
        assert pruned == ["old-1"]  # then pruned by retention
    shutil.copy(kept, path)  # the old line, put back
    async with Client(f"sqlite:///{db}", workflows=[flow]) as c:
        with pytest.raises(podium.NotFound):
            await c.get("old-1")  # not run a second time, its deleted input not brought back
        refused = [e for e in await c.audit_log(limit=1000) if e.action == "startlog.refuse"]
        assert len(refused) == 1 and "old-1" in refused[0].data
        assert await c.verify_audit() == (len(await c.audit_log(limit=10_000)), None)
    assert not path.exists() and (path.parent / "refused" / path.name).exists()


HANG = """
import asyncio, sys
from podium import Client

async def main():
    async with Client(sys.argv[1]) as c:
        print(len(await c.list()), flush=True)

asyncio.run(main())
"""


@pytest.mark.parametrize("kind", ["fifo", "symlink to a device"])
async def test_attack_a_file_that_is_not_a_log_does_not_stop_an_engine_opening_the_store(
    tmp_path: Path, flow: Workflow, kind: str
) -> None:
    db = tmp_path / "p.db"
    async with Client(f"sqlite:///{db}") as c:
        await c.run(flow, {"n": 1})
    folder = starts_folder(db)
    folder.mkdir(mode=0o700, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(folder / "x.log")  # opening it to read waits for a writer, forever
    else:
        os.symlink("/dev/zero", folder / "x.log")  # reading it never ends, filling memory
    proc = subprocess.run(
        [sys.executable, "-c", HANG, f"sqlite:///{db}"], cwd=tmp_path, env=env_with(tmp_path), capture_output=True, text=True,
        timeout=20,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1"]
    assert not os.path.lexists(folder / "x.log")  # set aside (the link itself, not what it names)
    assert os.path.lexists(folder / "refused" / "x.log")
    async with Client(f"sqlite:///{db}") as c:
        refused = [json.loads(e.data) for e in await c.audit_log(limit=1000) if e.action == "startlog.refuse"]
        assert refused and "not a regular file" in refused[0]["lines"][0]


FULL = """
import asyncio, os, resource, signal, sys
from podium import Client, StoreError
import burstflow

db = sys.argv[1]


async def main():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    async with Client(f"sqlite:///{db}") as c:
        await c.run(burstflow.wf, {"n": -1})
        await asyncio.sleep(0)
        pad = "x" * 20_000
        handles = [await c.start(burstflow.wf, {"n": 0, "pad": pad})]  # the first of the turn: committed
        # The disk fills up (a quota, a full volume): files may grow no further than the largest now.
        biggest = max(os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p))
        resource.setrlimit(resource.RLIMIT_FSIZE, (biggest + 1, hard))
        try:
            for i in range(1, 60):
                handles.append(await c.start(burstflow.wf, {"n": i, "pad": pad}))
        except StoreError as exc:
            print("refused:", exc, file=sys.stderr, flush=True)
        print(" ".join(h.id for h in handles), c.bursts.logged, flush=True)
        if sys.argv[2] == "kill":
            os.kill(os.getpid(), signal.SIGKILL)  # before the loop turns: the burst is only in the log
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space again
        outputs = [await asyncio.wait_for(h.result(), 60) for h in handles]
        assert outputs == [2 * i for i in range(len(handles))], outputs
        print("ok", flush=True)

asyncio.run(main())
"""


@pytest.mark.parametrize("then", ["kill", "go on"])
async def test_a_start_log_that_cannot_be_written_mid_burst_loses_no_acknowledged_start(
    tmp_path: Path, flow: Workflow, then: str
) -> None:
    db = tmp_path / "p.db"
    proc = subprocess.run(
        [sys.executable, "-c", FULL, str(db), then], cwd=tmp_path, env=env_with(tmp_path), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    ids, logged = proc.stdout.splitlines()[0].rsplit(" ", 1)
    assert int(logged) >= 2, proc.stderr  # some went through the log before it could not be written
    if then == "kill":
        assert proc.returncode == -9, proc.stderr
    else:
        assert proc.returncode == 0 and proc.stdout.splitlines()[-1] == "ok", proc.stderr
    async with Client(f"sqlite:///{db}", workflows=[flow]) as c:
        for rid in ids.split():
            assert await asyncio.wait_for(c.result(rid), 60) is not None  # every start acknowledged is there
        _checked, problem = await c.verify_audit()
        assert problem is None


SMALL = '''
import asyncio, resource, sys
from podium import Client

resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, resource.RLIM_INFINITY))  # 1.5 GiB of memory


async def main():
    async with Client(sys.argv[1]) as c:
        print(len(await c.list()), flush=True)

asyncio.run(main())
'''


async def test_attack_a_huge_file_in_the_folder_does_not_stop_an_engine_opening_the_store(
    tmp_path: Path, flow: Workflow
) -> None:
    db = tmp_path / "p.db"
    async with Client(f"sqlite:///{db}") as c:
        await c.run(flow, {"n": 1})
    folder = starts_folder(db)
    folder.mkdir(mode=0o700, exist_ok=True)
    with open(folder / "x.log", "wb") as fh:
        fh.truncate(4 << 30)  # 4 GiB of one line, sparse: no disk taken, and reading it whole needs the memory
    proc = subprocess.run(
        [sys.executable, "-c", SMALL, f"sqlite:///{db}"], cwd=tmp_path, env=env_with(tmp_path), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["1"]
    assert (folder / "refused" / "x.log").exists()


async def test_an_engine_without_the_audit_key_leaves_a_dead_engines_log_for_one_with_it(
    tmp_path: Path, flow: Workflow
) -> None:
    db, mine, other = tmp_path / "p.db", tmp_path / "keys" / "audit.key", tmp_path / "elsewhere" / "audit.key"
    async with Client(f"sqlite:///{db}", audit_key=mine) as c:
        await c.run(flow, {"n": 1})
        path = _genuine_log(db, c.store, "kept-1")
    # Opened by a process that does not hold this store's key (another user, a container without it).
    async with Client(f"sqlite:///{db}", audit_key=other) as c:
        with pytest.raises(podium.NotFound):
            await c.get("kept-1")
    assert path.exists()  # left where an engine that holds the key finds it, not set aside
    async with Client(f"sqlite:///{db}", audit_key=mine, workflows=[flow]) as c:
        assert await c.result("kept-1") == 6
    assert not path.exists()


async def test_attack_a_refused_folder_that_is_a_symlink_is_not_followed(tmp_path: Path, flow: Workflow) -> None:
    db = tmp_path / "p.db"
    async with Client(f"sqlite:///{db}") as c:
        await c.run(flow, {"n": 1})
    folder, elsewhere = starts_folder(db), tmp_path / "elsewhere"
    folder.mkdir(mode=0o700, exist_ok=True)
    elsewhere.mkdir()
    os.symlink(elsewhere, folder / "refused")  # refused logs would land where the attacker reads them
    (folder / "x.log").write_text("forged\n")
    async with Client(f"sqlite:///{db}") as c:
        assert await c.bursts.recover() == 0
    assert os.listdir(elsewhere) == []
    assert (folder / "x.log.refused").exists()


FORKED = burst_script(20, '''\
        child = os.fork()  # a step's worker process (multiprocessing forks), outliving the engine
        if child == 0:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            time.sleep(120)
            os._exit(0)
        print(child, " ".join(h.id for h in handles), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # before the loop turns: the burst is only in the log''')


async def test_a_forked_child_does_not_keep_a_dead_engines_log_from_being_replayed(
    tmp_path: Path, flow: Workflow
) -> None:
    db = tmp_path / "p.db"
    proc = subprocess.run(
        [sys.executable, "-c", FORKED, str(db)], cwd=tmp_path, env=env_with(tmp_path), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == -9, proc.stderr
    child, *ids = proc.stdout.split()
    try:
        async with Client(f"sqlite:///{db}", workflows=[flow]) as c:
            outputs = [await asyncio.wait_for(c.result(rid), 60) for rid in ids]
            assert outputs == [2 * i for i in range(20)]
    finally:
        os.kill(int(child), 9)


async def test_an_engine_at_power_durability_replays_a_crash_safe_engines_log(
    tmp_path: Path, flow: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "p.db"
    async with Client(f"sqlite:///{db}") as c:
        await c.run(flow, {"n": 1})
        path = _genuine_log(db, c.store, "switched-1")  # its engine died at durability "crash"
    monkeypatch.setenv("PODIUM_DURABILITY", "power")  # restarted power-loss safe: it writes no start log
    async with Client(f"sqlite:///{db}", workflows=[flow]) as c:
        assert c.store.start_log("me") is None  # type: ignore[attr-defined]
        assert await c.result("switched-1") == 6  # yet it creates the runs a stopped engine's log names
    assert not path.exists()


async def test_attack_a_start_log_folder_others_may_write_is_not_written(tmp_path: Path, flow: Workflow) -> None:
    db = tmp_path / "p.db"
    folder = starts_folder(db)
    folder.mkdir()
    os.chmod(folder, 0o777)  # made beforehand by someone else, or loosened: they could delete acknowledged starts
    async with Client(f"sqlite:///{db}", workflows=[flow]) as c:
        await c.run(flow, {"n": 0})
        handles = [await c.start(flow, {"n": i}) for i in range(10)]
        assert c.bursts.logged == 0  # each start committed before it returned instead
        assert os.listdir(folder) == []
        assert [await h.result() for h in handles] == [2 * i for i in range(10)]


@pytest.mark.parametrize("slots", [1000, 3])
async def test_a_burst_that_cannot_be_committed_when_its_engine_closes_is_created_by_the_next(
    tmp_path: Path, flow: Workflow, slots: int
) -> None:
    import sqlite3

    db = tmp_path / "p.db"
    c = Client(f"sqlite:///{db}", workflows=[flow], max_concurrent_runs=slots)  # 3: most starts queued (pending)
    await c.open()
    await c.run(flow, {"n": 0})
    c.store.db.execute("PRAGMA busy_timeout=50")  # type: ignore[attr-defined]
    other = sqlite3.connect(db, isolation_level=None)
    try:
        first = await c.start(flow, {"n": 1})
        other.execute("BEGIN IMMEDIATE")  # another process's long write transaction
        handles = [first] + [await c.start(flow, {"n": i}) for i in range(2, 12)]
        await c.close()  # what it cannot commit stays in its start log
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert any(starts_folder(db).glob("*.log"))  # left for the next engine
    async with Client(f"sqlite:///{db}", workflows=[flow]) as c:
        for h in handles[1:]:
            assert (await c.get(h.id)).id == h.id  # created from the log
        outputs = [await asyncio.wait_for(c.result(h.id), 60) for h in handles[1:]]
        assert outputs == [2 * i for i in range(2, 12)]
        assert (await c.verify_audit())[1] is None
    assert not any(starts_folder(db).glob("*.log"))


async def test_a_keyed_start_of_a_run_id_still_in_a_burst_is_idempotent(tmp_path: Path, flow: Workflow) -> None:
    db = tmp_path / "p.db"
    async with Client(f"sqlite:///{db}", workflows=[flow]) as c:
        await c.run(flow, {"n": 0})
        await c.start(flow, {"n": 1})  # the first of the turn: committed
        logged = await c.start(flow, {"n": 2})  # acknowledged through the start log
        assert c.bursts.logged == 1
        again = await c.start(flow, {"n": 99}, run_id=logged.id)  # the same run id, in the same turn
        assert not again.created  # it exists: nothing new starts
        assert await logged.result() == 4  # the start acknowledged first is the run, with its input


async def test_attack_a_file_set_aside_does_not_replace_one_set_aside_before(tmp_path: Path, flow: Workflow) -> None:
    db = tmp_path / "p.db"
    async with Client(f"sqlite:///{db}") as c:
        await c.run(flow, {"n": 1})
    folder = starts_folder(db)
    (folder / "refused").mkdir(mode=0o700, parents=True)
    (folder / "refused" / "gone:1-1.log").write_text("kept for a person to read\n")
    os.symlink("/dev/null", folder / "gone:1-1.log")  # the same name again: would overwrite what was kept
    async with Client(f"sqlite:///{db}") as c:
        assert await c.bursts.recover() == 0
    assert (folder / "refused" / "gone:1-1.log").read_text() == "kept for a person to read\n"
    assert not os.path.lexists(folder / "gone:1-1.log")
    assert len(os.listdir(folder / "refused")) == 2


MIDFLUSH = burst_script(1200, '''\
        print(" ".join(h.id for h in handles), flush=True)
        # Killed in the middle of the flush: its first 500 committed, the other 699 not yet.
        c.subscribe(lambda ev: os.kill(os.getpid(), signal.SIGKILL) if ev.run_id == handles[1].id else None)
        await asyncio.sleep(30)''')


async def test_kill_9_in_the_middle_of_a_burst_s_commit_creates_each_run_once(tmp_path: Path, flow: Workflow) -> None:
    import sqlite3

    db = tmp_path / "p.db"
    proc = subprocess.run(
        [sys.executable, "-c", MIDFLUSH, str(db)], cwd=tmp_path, env=env_with(tmp_path), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == -9, proc.stderr
    ids = proc.stdout.split()
    conn = sqlite3.connect(db)
    stored = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    conn.close()
    assert 1 < stored < 1201  # some of the burst committed, not all
    async with Client(f"sqlite:///{db}", workflows=[flow]) as c:
        assert [(await c.get(rid)).id for rid in ids] == ids
        assert (await c.verify_audit())[1] is None
    conn = sqlite3.connect(db)
    try:
        starts = conn.execute("SELECT target, COUNT(*) FROM audit WHERE action='run.start' GROUP BY target").fetchall()
    finally:
        conn.close()
    counts = dict(starts)
    assert all(counts.get(rid) == 1 for rid in ids)  # one run.start each, none twice
