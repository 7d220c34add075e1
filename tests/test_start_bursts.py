"""Starts made in a burst (several in one turn of the event loop) are acknowledged through the
engine's start log and committed together (podium/engine/bursts.py, podium/storage/_startlog.py):
the same runs, the same audit log, nothing lost when the process is killed in between, and no
line of the log trusted without the audit key."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from burst_helpers import burst_script, dead_log, dead_run, env_with, flow_fixture, starts_folder  # noqa: F401 (flow_fixture: the fixture 'flow')

import podium
from podium import Client, Workflow
from podium.records import EventType, RunRecord, RunStatus
from podium.storage._startlog import StartLog, decode, encode


def _rows(db: Path, sql: str, *args: object) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def _logs(db: Path) -> list[str]:
    folder = starts_folder(db)
    return sorted(p.name for p in folder.glob("*.log")) if folder.exists() else []


async def test_a_burst_of_starts_is_logged_then_committed_together(tmp_path: Path, flow: Workflow) -> None:
    db = tmp_path / "p.db"
    async with Client(f"sqlite:///{db}") as c:
        handles = [await c.start(flow, {"n": i}) for i in range(60)]
        logged = c.bursts.logged
        assert logged >= 50  # the first start of the turn is written at once, the rest through the log
        assert _logs(db)  # acknowledged: in the start log, durable against a crash of this process
        # Anything read through the client sees them: it waits for their commit first.
        assert (await c.get(handles[-1].id)).id == handles[-1].id
        assert [await h.result() for h in handles] == [2 * i for i in range(60)]
        assert await c.verify_audit() == (len(await c.audit_log(limit=10_000)), None)
        batches = c.store.writes.batches  # type: ignore[attr-defined]
    assert _logs(db) == []  # committed: the log files are gone
    starts = _rows(db, "SELECT target FROM audit WHERE action='run.start'")
    assert sorted(t for (t,) in starts) == sorted(h.id for h in handles)  # one anchor each
    assert batches < 60  # they shared transactions


async def test_starts_apart_are_each_committed_before_they_return(tmp_path: Path, flow: Workflow) -> None:
    db = tmp_path / "p.db"
    async with Client(f"sqlite:///{db}") as c:
        for i in range(5):
            h = await c.start(flow, {"n": i})
            # Another connection (another process) sees the run as soon as its start returns.
            assert _rows(db, "SELECT id FROM runs WHERE id=?", h.id) == [(h.id,)]
            await asyncio.sleep(0)  # the next start is in a later turn of the loop
        assert c.bursts.logged == 0


async def test_starts_with_their_own_ids_never_go_through_the_log(tmp_path: Path, flow: Workflow) -> None:
    db = tmp_path / "p.db"
    async with Client(f"sqlite:///{db}") as c:
        handles = [await c.start(flow, {"n": i}, run_id=f"order-{i}") for i in range(10)]
        assert c.bursts.logged == 0
        assert all(_rows(db, "SELECT 1 FROM runs WHERE id=?", h.id) for h in handles)
        again = await c.start(flow, {"n": 0}, run_id="order-0")
        assert again.created is False  # idempotent: looked up in the store


@pytest.mark.parametrize("url", ["memory://", "sqlite:///{db}?power"])
async def test_stores_that_keep_no_start_log_commit_every_start(tmp_path: Path, flow: Workflow, url: str) -> None:
    if url.endswith("?power"):
        from podium.storage.sqlite import SQLiteStore

        store: object = SQLiteStore(f"sqlite:///{tmp_path / 'p.db'}", durability="power")
    else:
        store = url
    async with Client(store) as c:  # type: ignore[arg-type]
        handles = [await c.start(flow, {"n": i}) for i in range(10)]
        assert c.bursts.logged == 0
        assert [await h.result() for h in handles] == [2 * i for i in range(10)]
    assert not list(tmp_path.glob("*-starts"))


async def test_a_client_that_does_not_execute_commits_every_start(tmp_path: Path, flow: Workflow) -> None:
    db = tmp_path / "p.db"
    async with Client(f"sqlite:///{db}", execute=False) as c:
        handles = [await c.start(flow, {"n": i}) for i in range(10)]
        assert c.bursts.logged == 0  # workers elsewhere must see each run at once
        assert len(_rows(db, "SELECT id FROM runs")) == len(handles)


SCRIPT = burst_script(20, '''\
        print(" ".join(h.id for h in handles), c.bursts.logged, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # before the loop turns: the burst is only in the log''')


async def test_kill_9_after_a_burst_loses_no_start(tmp_path: Path, flow: Workflow) -> None:
    db = tmp_path / "p.db"
    env = env_with(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, f"sqlite:///{db}"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    *ids, logged = proc.stdout.split()
    assert len(ids) == 20 and int(logged) >= 19
    assert _logs(db)  # left behind by the killed engine
    assert len(_rows(db, "SELECT id FROM runs")) == 1 + 20 - int(logged)  # the warm-up run and the direct start

    async with Client(f"sqlite:///{db}", workflows=[flow]) as c:
        # Opening the store created the logged runs as their engine started them, then resumed
        # them with the burst's first run (committed on its own): the engine is dead, on this host.
        assert _logs(db) == []
        outputs = [await asyncio.wait_for(c.result(rid), 60) for rid in ids]
        assert outputs == [2 * i for i in range(20)]
        checked, problem = await c.verify_audit()
        assert checked > 40
        assert problem is None
        replays = [e for e in await c.audit_log(limit=10_000) if e.action == "startlog.replay"]
        assert len(replays) == 1 and json.loads(replays[0].data)["created"] == int(logged)
        starter = await c.governance.started_by(ids[-1])
        assert starter is not None and starter.name == c.principal.name  # who started it, kept
    anchors = _rows(db, "SELECT target FROM audit WHERE action='run.start'")
    assert sorted(t for (t,) in anchors if t in ids) == sorted(ids)  # one anchor each, none twice


async def test_attack_a_line_not_signed_with_the_audit_key_is_refused_and_audited(tmp_path: Path, flow: Workflow) -> None:
    db = tmp_path / "p.db"
    async with Client(f"sqlite:///{db}") as c:
        await c.run(flow, {"n": 1})
        path = dead_log(db, c.store, [dead_run("genuine-1")])
    # Someone who can write the folder, not read the key, adds a run of their own.
    with open(path, "a") as fh:
        forged = encode(dead_run("forged-1"), podium.records.Event(run_id="forged-1", seq=1, type="run_started", ts=1.0),
                        podium.records.AuditEntry(ts=1.0, actor="admin", action="run.start", target="forged-1"))  # fmt: skip
        fh.write(f"{'0' * 12}:{'0' * 32}\t{forged}\n")
    async with Client(f"sqlite:///{db}") as c:
        assert (await c.get("genuine-1")).workflow == "burstflow"  # created from the log
        with pytest.raises(podium.NotFound):
            await c.get("forged-1")
        refused = [e for e in await c.audit_log(limit=10_000) if e.action == "startlog.refuse"]
        assert len(refused) == 1 and "audit key this engine does not hold (000000000000)" in refused[0].data
        # A line under a key the store holds, but not matching its record, is refused too.
        path = dead_log(db, c.store, [dead_run("genuine-2")], owner="gone:2")
        mac = path.read_text().split("\t")[0]  # a genuine line's MAC on another run's record
        body = encode(dead_run("forged-22"), podium.records.Event(run_id="forged-22", seq=1, type="run_started", ts=1.0), None)
        path.write_text(f"{mac}\t{body}\n")
        assert await c.bursts.recover() == 0
        refused = [e for e in await c.audit_log(limit=10_000) if e.action == "startlog.refuse"]
        assert len(refused) == 2 and "not signed with this store's audit key" in refused[1].data
    # Nothing of a refused file is trusted, nor deleted: it is kept for a person to read.
    assert not path.exists()
    assert sorted(p.name for p in (path.parent / "refused").iterdir()) == ["gone:1-1.log", "gone:2-1.log"]


async def test_the_log_of_a_live_engine_is_left_alone(tmp_path: Path, flow: Workflow) -> None:
    db = tmp_path / "p.db"
    async with Client(f"sqlite:///{db}") as c:
        await c.run(flow, {"n": 1})
        log = StartLog(str(starts_folder(db)), "alive:1", c.store.audit_keys)
        run = dead_run("held-1")
        log.add(run, podium.records.Event(run_id=run.id, seq=1, type=EventType.RUN_STARTED, ts=1.0), None)
        assert await c.bursts.recover() == 0  # its engine holds the file: its commit is its own
        with pytest.raises(podium.NotFound):
            await c.get("held-1")
        log.close()  # it stops without committing: the file stays, unlocked
        assert await c.bursts.recover() == 1
        held = await c.get("held-1")  # as its engine started it, then handed back: no engine drives it
        assert (held.status, held.owner, held.lease_expires_at) == (RunStatus.RUNNING, None, None)


async def test_a_start_already_committed_is_not_created_twice(tmp_path: Path, flow: Workflow) -> None:
    db = tmp_path / "p.db"
    async with Client(f"sqlite:///{db}") as c:
        handle = await c.start(flow, {"n": 2})
        await handle.result()
        stored = await c.get(handle.id)
        path = dead_log(db, c.store, [stored])  # the process died after the commit, before deleting its log
        assert await c.bursts.recover() == 0
        assert not path.exists()
        assert (await c.get(handle.id)).status is RunStatus.COMPLETED
    anchors = _rows(db, "SELECT COUNT(*) FROM audit WHERE action='run.start' AND target=?", handle.id)
    assert anchors == [(1,)]


def test_the_start_log_is_private(tmp_path: Path) -> None:
    from podium._auditkey import AuditKeys

    keys = AuditKeys(tmp_path / "audit.key", "sqlite:///x")
    log = StartLog(str(tmp_path / "x.db-starts"), "me:1", keys)
    log.add(RunRecord(id="r", workflow="w", version="1", status=RunStatus.RUNNING), podium.records.Event(run_id="r", seq=1, type="run_started", ts=1.0), None)
    assert (os.stat(tmp_path / "x.db-starts").st_mode & 0o777) == 0o700
    (name,) = os.listdir(tmp_path / "x.db-starts")
    assert (os.stat(tmp_path / "x.db-starts" / name).st_mode & 0o777) == 0o600
    log.close()


def test_a_start_record_reads_back_as_written() -> None:
    run = RunRecord(
        id="r1", workflow="w", version="2", status=RunStatus.RUNNING, input='{"a": 1}', created_at=5.0, started_at=5.0,
        owner="me:1", lease_expires_at=35.0, queue="q", priority=3, tenant="t", workflow_ref="m:wf",
    )  # fmt: skip
    first = podium.records.Event(run_id="r1", seq=1, type=EventType.RUN_STARTED, ts=5.0, data='{"owner": "me:1"}')
    anchor = podium.records.AuditEntry(ts=5.0, actor="ann", action="run.start", target="r1", data='{"x": 1}')
    back, events, entry = decode(encode(run, first, anchor))
    assert (back.id, back.workflow, back.version, back.input, back.queue, back.priority, back.tenant) == (
        "r1", "w", "2", '{"a": 1}', "q", 3, "t"
    )
    assert (back.status, back.owner, back.lease_expires_at, back.started_at) == (RunStatus.RUNNING, "me:1", 35.0, 5.0)
    assert [(e.seq, e.type, e.ts, e.data) for e in events] == [(1, EventType.RUN_STARTED, 5.0, '{"owner": "me:1"}')]
    assert entry is not None and (entry.actor, entry.action, entry.target, entry.data) == ("ann", "run.start", "r1", '{"x": 1}')
    import base64
    import marshal

    for bad in (b"(2,)", b"{}", b"not base64!", marshal.dumps((2,)), marshal.dumps((1, 2)), marshal.dumps([1])):
        text = bad.decode() if bad.endswith((b")", b"}", b"!")) else base64.b64encode(bad).decode()
        with pytest.raises(ValueError, match="start record"):
            decode(text)


async def test_a_burst_while_another_process_holds_the_write_lock_commits_once_it_is_released(
    tmp_path: Path, flow: Workflow
) -> None:
    db = tmp_path / "p.db"
    async with Client(f"sqlite:///{db}") as c:
        done = await c.start(flow, {"n": 0})
        await done.result()
        c.store.db.execute("PRAGMA busy_timeout=50")  # type: ignore[attr-defined]
        other = sqlite3.connect(db, isolation_level=None)
        try:
            await c.start(flow, {"n": 1})  # the first of the turn: committed here (and the rest go to the log)
            other.execute("BEGIN IMMEDIATE")  # then another process's long write transaction
            handles = [await c.start(flow, {"n": i}) for i in range(2, 12)]  # durable in the log: acknowledged
            with pytest.raises(podium.StoreError, match="in its start log"):
                await c.get(handles[-1].id)  # its commit failed: said so, kept, tried again
            assert (await c.get(done.id)).status is RunStatus.COMPLETED  # no other call is stopped by it
            assert len(await c.list(limit=100)) == 2  # the two committed; the burst is not in the store yet
            for _ in range(2):  # while the store fails, a start is not acknowledged, in a burst or not
                with pytest.raises(podium.StoreError, match="locked"):
                    await c.start(flow, {"n": 99})
        finally:
            other.execute("ROLLBACK")
            other.close()
        outputs = [await asyncio.wait_for(h.result(), 30) for h in handles]
        assert outputs == [2 * i for i in range(2, 12)]
        assert len(await c.list(limit=100)) == 12  # and the starts refused were not made
    assert _logs(db) == []


async def test_attack_a_link_or_a_fifo_in_the_start_log_folder_is_refused_unread(tmp_path: Path, flow: Workflow) -> None:
    db = tmp_path / "p.db"
    secret = tmp_path / "secret.txt"
    secret.write_text("not a start log\n")
    async with Client(f"sqlite:///{db}") as c:
        await c.run(flow, {"n": 1})
        folder = starts_folder(db)
        folder.mkdir(exist_ok=True)
        (folder / "link-1.log").symlink_to(secret)
        os.mkfifo(folder / "pipe-1.log")  # opened blocking, it would hang the engine that opens the store
        assert await c.bursts.recover() == 0
        refused = [e for e in await c.audit_log(limit=10_000) if e.action == "startlog.refuse"]
        assert len(refused) == 2 and all("not a regular file" in e.data for e in refused)
    assert sorted(p.name for p in (folder / "refused").iterdir()) == ["link-1.log", "pipe-1.log"]
    assert secret.read_text() == "not a start log\n"  # the link moved, not what it pointed at


async def test_attack_a_run_input_shaped_like_log_lines_stays_one_start(tmp_path: Path, flow: Workflow) -> None:
    """A run's input (anyone who may start the workflow writes it) holding newlines, tabs and a
    MAC-looking prefix cannot add a line of its own to the start log: the record is base64."""
    db = tmp_path / "p.db"
    async with Client(f"sqlite:///{db}") as c:
        await c.run(flow, {"n": 1})
        keys = c.store.audit_keys
        crafted = '{"n": 2, "x": "\\n' + keys.mac("anything") + '\\tAAAA\\n\\u0000"}'
        run = dead_run("crafted-1")
        run.input = crafted
        path = dead_log(db, c.store, [run])
        assert len(path.read_bytes().splitlines()) == 1
        assert await c.bursts.recover() == 1
        assert (await c.get("crafted-1")).input == crafted
        assert not [e for e in await c.audit_log(limit=10_000) if e.action == "startlog.refuse"]
