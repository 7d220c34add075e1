"""The order and atomicity of a run's writes: an end interrupted by a cancellation, a step event
still landing when the end is written, the last step written with the end, the steps of many runs
in one turn sharing a transaction, and approval decisions against their requests' timeouts."""

from __future__ import annotations

import asyncio
import json

import pytest
from store_helpers import end_entry as _end
from store_helpers import new_run as _run
from store_helpers import started as _ev

from podium import RunStatus
from podium.records import Event


async def _cancel_while_its_end_waits(client, run_id: str, lock: asyncio.Lock) -> tuple[asyncio.Future, asyncio.Future]:
    """Wait until the run's end waits for the audit chain (``lock``, held by its step), cancel the
    run, and wait until that wait is cancelled. Returns (the end's wait, the cancellation)."""
    for _ in range(1000):
        if lock.locked() and lock._waiters:  # the run's end waits for the chain
            break
        await asyncio.sleep(0)
    assert lock._waiters
    end = lock._waiters[0]
    cancel = asyncio.ensure_future(client.driving.cancel(run_id))
    for _ in range(1000):
        if end.cancelled():
            break
        await asyncio.sleep(0)
    return end, cancel


async def test_sqlite_a_run_cancelled_while_its_end_waits_for_the_audit_chain_leaves_no_hole(tmp_path):
    """Review: the run's end waits for the store's audit chain (held by another writer) when the run
    is cancelled. Its end is not written; the cancel's end must not leave that seq empty, and the
    digest the cancel's end anchors must match the stored events."""
    from podium import Client, Workflow
    from podium.governance.audit import check_run

    async with Client(f"sqlite:///{tmp_path}/e.db", poll_interval=0.05) as client:
        store = client.store
        wf = Workflow("ends")
        lock = store._own_chain().lock

        @wf.step
        async def one():
            await lock.acquire()  # another writer holds the chain as this run ends
            return 1

        handle = await client.start(wf)
        end, cancel = await _cancel_while_its_end_waits(client, handle.id, lock)
        for _ in range(1000):  # the cancel's end waits for the chain next
            if any(w is not end for w in lock._waiters):
                break
            await asyncio.sleep(0)
        lock.release()
        await asyncio.wait_for(cancel, 5)
        events = await store.load_events(handle.id)
        assert [e.seq for e in events] == list(range(1, len(events) + 1)), [(e.seq, e.type) for e in events]
        # the step's completion, held back to go with the run's end, went with the cancel's end
        assert [(e.type, e.step) for e in events][-2:] == [("step_completed", "one"), ("run_cancelled", None)]
        run = await store.get_run(handle.id)
        assert check_run(handle.id, run, events, await store.audit_for(handle.id)) is None


async def test_sqlite_a_failing_run_cancelled_while_its_end_waits_for_the_audit_chain_still_ends(tmp_path):
    """Review 2: as above, but the run ends because a step failed (its end is written from drive's
    step-failure handler). The cancellation interrupts that end: the run must still end (failed or
    cancelled), with no hole under its end and a digest that matches."""
    from podium import Client, NonRetryableError, Workflow
    from podium.governance.audit import check_run

    async with Client(f"sqlite:///{tmp_path}/e.db", poll_interval=0.05) as client:
        store = client.store
        wf = Workflow("fails")
        lock = store._own_chain().lock

        @wf.step
        async def one():
            await lock.acquire()  # another writer holds the chain as this run ends
            raise NonRetryableError("no")

        handle = await client.start(wf)
        _, cancel = await _cancel_while_its_end_waits(client, handle.id, lock)
        for _ in range(100):
            await asyncio.sleep(0)
        lock.release()
        await asyncio.wait_for(cancel, 5)
        run = await store.get_run(handle.id)
        assert run.status.finished, run.status
        events = await store.load_events(handle.id)
        assert [e.seq for e in events] == list(range(1, len(events) + 1)), [(e.seq, e.type) for e in events]
        assert check_run(handle.id, run, events, await store.audit_for(handle.id)) is None


async def test_a_runs_end_commits_after_its_step_event_still_landing(store):
    """A step's event whose writer was cancelled while it waited in a group still lands (its seq
    and digest are counted); the run's end, written next through another group (PostgreSQL: another
    connection), must not commit before it: once the end is written, the log has no hole."""
    for _ in range(5):  # the race is one of timing: several tries
        rid = f"land{_}"
        await store.create_run(_run(rid, created=1000.0, status=RunStatus.RUNNING), [_ev(rid, 1)])
        others = [f"{rid}-o{i}" for i in range(3)]
        for o in others:
            await store.create_run(_run(o, created=1000.0, status=RunStatus.RUNNING), [_ev(o, 1)])
        data = '{"started":1,"output":null}'
        busy = [asyncio.ensure_future(store.append_one(o, 2, "step_completed", 1.0, "s", 0, None, 1, data)) for o in others]
        step = asyncio.ensure_future(store.append_one(rid, 2, "step_completed", 1.0, "s", 0, None, 1, data))
        await asyncio.sleep(0)  # queued behind the others (or written at once by a store that can)
        step.cancel()
        await asyncio.gather(step, return_exceptions=True)
        await store.append([_ev(rid, 3)], {"status": RunStatus.COMPLETED}, audit=_end(rid))
        assert [e.seq for e in await store.load_events(rid)] == [1, 2, 3]
        await asyncio.gather(*busy)


async def test_waiting_for_a_landing_write_is_bounded():
    """GroupWrite.landed waits for a write whose caller was cancelled (``lands``) until it is made,
    but never longer than its timeout: a write held by another process's lock must not hold the
    run's end for ever."""
    from podium.storage._group import GroupWrite

    gate = asyncio.Event()
    written: list[str] = []

    async def write(items):
        await gate.wait()
        written.extend(items)
        return [None for _ in items]

    group: GroupWrite[str, None] = GroupWrite(write)
    caller = asyncio.ensure_future(group.submit("step", lands=True, key="r"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # its group is being written (held at the gate)
    caller.cancel()
    await asyncio.gather(caller, return_exceptions=True)
    waited = asyncio.ensure_future(group.landed("r", timeout=0.05))
    await asyncio.wait_for(waited, 5)  # returned at its timeout, the write still held
    assert written == []
    end = asyncio.ensure_future(group.landed("r", timeout=30))
    await asyncio.sleep(0)
    assert not end.done()  # waits for the write while it is under way...
    gate.set()
    await asyncio.wait_for(end, 5)  # ...and returns once it is made
    assert written == ["step"]
    await group.landed("r")  # nothing left on its way: at once


async def test_a_runs_write_queued_behind_its_refused_one_in_the_next_group_is_not_made():
    """The "stale owner's write made in a later turn" (seventh session's lineage review): a run's
    step event refused in one group (another engine holds its seq) while the run's next event was
    queued for the next group. That one was written, at a seq after the other engine's events. Now
    a run's writes queued behind its refused one, or made before its caller heard of the refusal,
    are refused with the same error, unwritten; once the caller has heard, the run may write again
    (an engine taking it up anew)."""
    from podium.errors import LeaseLost
    from podium.storage._group import GroupWrite

    gate = asyncio.Event()
    written: list[str] = []

    async def write(items):
        await gate.wait()
        if "stale-1" in items:
            raise LeaseLost("event 5 of run r already written: another engine owns it")
        written.extend(items)
        return [None for _ in items]

    group: GroupWrite[str, None] = GroupWrite(write)
    first = asyncio.ensure_future(group.submit("stale-1", lands=True, key="r"))
    other = asyncio.ensure_future(group.submit("other-run", lands=True, key="o"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # the first group is being written (held at the gate)
    second = asyncio.ensure_future(group.submit("stale-2", lands=True, key="r"))
    await asyncio.sleep(0)  # queued for the next group
    gate.set()
    results = await asyncio.gather(first, other, second, return_exceptions=True)
    assert isinstance(results[0], LeaseLost) and results[1] is None
    assert isinstance(results[2], LeaseLost), results[2]
    assert written == ["other-run"]
    await group.submit("fresh", lands=True, key="r")  # the refusal was heard: a new writer of r writes
    assert written == ["other-run", "fresh"]


async def test_a_runs_write_queued_behind_its_refused_one_is_not_made_when_its_caller_hears_first():
    """As above, with the SQLite store's writes: their callers wait on them directly (``lands``
    False), and a write may be made at once (``eager``). The refused write's caller heard of it
    before the next group was written, which freed the run, and the run's write queued meanwhile
    was made (after the other engine's events); a refused write made at once noted no refusal at
    all. Now, when the caller hears, the run's writes still queued are refused with it."""
    from podium.errors import LeaseLost
    from podium.storage._group import GroupWrite

    gate = asyncio.Event()
    written: list[str] = []

    async def write(items):
        await gate.wait()
        if "stale-1" in items:
            raise LeaseLost("event 5 of run r already written: another engine owns it")
        written.extend(items)
        return [None for _ in items]

    for eager in (False, True):  # True: the refused write made at once, the next queued meanwhile
        gate.clear()
        written.clear()
        group: GroupWrite[str, None] = GroupWrite(write, eager=eager)
        first = asyncio.ensure_future(group.submit("stale-1", key="r"))
        other = asyncio.ensure_future(group.submit("other-run", key="o"))
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # the first write is being made (held at the gate)
        second = asyncio.ensure_future(group.submit("stale-2", key="r"))
        await asyncio.sleep(0)  # queued for the next group
        gate.set()
        results = await asyncio.gather(first, other, second, return_exceptions=True)
        assert isinstance(results[0], LeaseLost) and results[1] is None
        assert isinstance(results[2], LeaseLost), (eager, results[2])
        assert written == ["other-run"]
        await group.submit("fresh", key="r")  # the refusal was heard: a new writer of r writes
        assert written == ["other-run", "fresh"]


async def test_sqlite_a_runs_last_step_is_written_with_its_end_in_one_transaction(tmp_path):
    """The completion of a run's last step is held back and written with the run's end (one commit,
    not two); an earlier step's is written at once, before the next step starts."""
    from podium import Client, Workflow

    wf = Workflow("two")

    @wf.step
    async def first():
        return 1

    @wf.step
    async def second(first):
        return first + 1

    async with Client(f"sqlite:///{tmp_path}/t.db") as client:
        await client.run(wf)  # warm: the workflow registered, the audit chain anchored
        db = client.store.db
        log: list[str] = []
        db.set_trace_callback(log.append)
        handle = await client.start(wf)
        assert await handle.result() == 2
        db.set_trace_callback(None)
        events = await client.store.load_events(handle.id)
    assert [(e.type, e.step) for e in events] == [
        ("run_started", None), ("step_completed", "first"), ("step_completed", "second"), ("run_completed", None),
    ]  # fmt: skip
    transactions: list[list[str]] = []
    for sql in log:
        if sql.startswith("BEGIN"):
            transactions.append([])
        elif transactions and not sql.startswith("COMMIT"):
            transactions[-1].append(sql)
    ends = [t for t in transactions if any("'run_completed'" in s for s in t)]
    assert len(ends) == 1
    assert any("'step_completed'" in s and "'second'" in s for s in ends[0])  # in the end's transaction
    assert not any("'first'" in s for s in ends[0])  # written before the second step ran


async def test_sqlite_a_loop_pass_is_one_statement(tmp_path):
    """A loop pass's completion and its decision to go round again are one multi-row INSERT (atomic
    as one statement), with no BEGIN or COMMIT around it."""
    from podium import Client, Loop, StepContext, Workflow

    wf = Workflow("three")

    @wf.step(loop=Loop(to="spin", while_=lambda spin: spin < 2, max_iterations=5))
    async def spin(ctx: StepContext):
        return ctx.iteration

    async with Client(f"sqlite:///{tmp_path}/l.db") as client:
        await client.run(wf)  # warm
        log: list[str] = []
        client.store.db.set_trace_callback(log.append)
        handle = await client.start(wf)
        assert await handle.result() == 2
        client.store.db.set_trace_callback(None)
    passes = [sql for sql in log if "'loop_iteration'" in sql]
    assert len(passes) == 2, log
    for sql in passes:
        assert sql.startswith("INSERT INTO events") and "'step_completed'" in sql, sql
        before = log[log.index(sql) - 1]
        assert not before.startswith("BEGIN"), before


async def test_a_runs_rows_written_at_once_are_all_or_none(store):
    """``Store.append_rows_at_once``: a store that writes them at once writes every row or none (a
    seq already taken fails them all with LeaseLost); one that cannot says so and writes nothing."""
    from podium import LeaseLost

    await store.create_run(_run("r1", created=1.0, status=RunStatus.RUNNING), [_ev("r1", 1)])
    rows = [
        ("r1", 2, "step_completed", 2.0, "spin", 0, None, 1, '{"started":1.5,"output":0}'),
        ("r1", 3, "loop_iteration", 2.0, "spin", 1, None, 0, None),
    ]
    if not store.append_rows_at_once(rows):
        assert [e.seq for e in await store.load_events("r1")] == [1]  # nothing written: append them
        return
    assert [(e.seq, e.type) for e in await store.load_events("r1")] == [
        (1, "run_started"), (2, "step_completed"), (3, "loop_iteration"),
    ]  # fmt: skip
    await asyncio.sleep(0)  # the next turn of the loop (SQLite writes at once once per run per turn)
    clash = [
        ("r1", 4, "step_completed", 3.0, "spin", 1, None, 1, '{"started":2.5,"output":1}'),
        ("r1", 3, "loop_iteration", 3.0, "spin", 2, None, 0, None),
    ]
    try:
        written = store.append_rows_at_once(clash)
    except LeaseLost:
        written = None
    assert written is None  # the taken seq fails the pair
    assert [e.seq for e in await store.load_events("r1")] == [1, 2, 3]  # and neither row is there


async def test_sqlite_runs_stepping_in_one_turn_share_a_transaction(tmp_path):
    """Many runs whose steps end in the same turn of the event loop: the first step event is written
    at once, the others gather into one group (a handful of commits, not one per run); one run's
    successive steps are still written at once."""
    from podium import Client, Workflow

    go, then = asyncio.Event(), asyncio.Event()
    wf = Workflow("wait-then-wait")

    @wf.step
    async def first():
        await go.wait()
        return 1

    @wf.step
    async def second(first):
        await then.wait()
        return first + 1

    async with Client(f"sqlite:///{tmp_path}/t.db") as client:
        handles = [await client.start(wf) for _ in range(20)]
        db = client.store.db
        log: list[str] = []
        db.set_trace_callback(log.append)
        go.set()  # every run's first step ends in the same turn; none writes anything else then

        async def written() -> int:
            n = 0
            for h in handles:
                n += [e.type for e in await client.store.load_events(h.id)].count("step_completed")
            return n

        for _ in range(1000):
            if await written() == 20:
                break
            await asyncio.sleep(0)
        db.set_trace_callback(None)
        then.set()
        assert [await h.result() for h in handles] == [2] * 20
    units: list[list[str]] = []  # transactions, and statements made outside one
    inside = False
    for sql in log:
        if sql.startswith("BEGIN"):
            units.append([])
            inside = True
        elif sql.startswith("COMMIT"):
            inside = False
        elif inside:
            units[-1].append(sql)
        elif sql.startswith("INSERT"):
            units.append([sql])
    firsts = [u for u in units if any("'step_completed'" in s and "'first'" in s for s in u)]
    assert sum(sum("'first'" in s for s in u) for u in firsts) == 20
    assert len(firsts) <= 3, [len(u) for u in firsts]  # at once, the next direct, the rest in a group


async def test_sqlite_a_store_opened_on_an_older_schema_refuses_a_late_decision_once_migrated(tmp_path):
    """Review (evening): a process opened the store at schema 6 (no inbox) without migrating, and
    another process migrated it since. A decision this process sends after the request was closed
    for its timeout must be refused: it looks the schema up again rather than trusting what it
    read when it opened."""
    from podium.storage.sqlite import SQLiteStore

    url = f"sqlite:///{tmp_path}/p.db"
    old = SQLiteStore(url)
    old.auto_migrate = False
    await old.open()
    await old.migrate(6)
    old._note_schema()  # as if opened at schema 6
    assert not old._keeps_inbox
    ask = json.dumps({"signal": "approval:x", "deadline": 1.0, "approval": {"title": "t"}})
    async with SQLiteStore(url) as new:  # another process upgrades the store
        await new.create_run(
            _run("r", created=1.0, status=RunStatus.RUNNING),
            [_ev("r", 1), Event(run_id="r", seq=2, type="step_waiting", ts=1.0, step="s/signal:approval:x", attempt=1, data=ask)],
        )
        assert [a.name for a in await old.open_approvals(run_id="r")] == ["approval:x"]  # listed: decidable
        assert await new.close_request("r", "approval:x")  # closed for its timeout
    try:
        stored = await old.send_signal("r", "approval:x", '{"approved":true}', now=2.0)
    finally:
        await old.close()
    assert stored is False, "a decision was stored after its request was closed (and would be ignored)"


async def test_a_decision_and_a_close_racing_on_two_connections_never_both_count(store_url):
    """Review (evening): two store objects (two connections on SQLite and PostgreSQL) close a
    request and decide it at the same moment, many times: exactly one wins each time."""
    if store_url.startswith("memory"):
        pytest.skip("a memory store is one object: there are no two connections")
    from podium import open_store

    a, b = open_store(store_url), open_store(store_url)
    await a.open()
    await b.open()
    ask = json.dumps({"signal": "approval:x", "deadline": 1.0, "approval": {"title": "t"}})
    try:
        both = []
        for i in range(40):
            rid = f"race{i}"
            await a.create_run(
                _run(rid, created=1.0, status=RunStatus.RUNNING),
                [_ev(rid, 1), Event(run_id=rid, seq=2, type="step_waiting", ts=1.0, step="s/signal:approval:x", attempt=1, data=ask)],
            )
            closed, sent = await asyncio.gather(
                a.close_request(rid, "approval:x"),
                b.send_signal(rid, "approval:x", '{"approved":true}', now=2.0, request=2),
            )
            stored = "approval:x" in await a.get_signals(rid)
            if closed == sent or stored != sent:
                both.append((i, closed, sent, stored))
        assert both == []
    finally:
        await a.close()
        await b.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_write_that_committed_but_reported_an_interruption_does_not_wedge_the_audit_chain(
    backend, tmp_path, request
):
    """Review (before this change, every later audited write failed): a run's creation commits, then
    its caller sees a cancellation (the event loop closing as COMMIT went out, a connection lost
    after it). The chain did not move in memory, so the next entry took a place already taken. Now
    an interrupted hold reads the chain's head back from the store before the next entry."""
    from podium import Client
    from podium.records import AuditEntry

    url = request.getfixturevalue("pg_url") if backend == "postgres" else f"sqlite:///{tmp_path}/w.db"
    async with Client(url) as client:
        store = client.store

        def start(rid: str) -> AuditEntry:
            return AuditEntry(ts=1.0, actor="engine", action="run.start", target=rid)

        await store.create_run(_run("warm", created=1.0, status=RunStatus.RUNNING), [_ev("warm", 1)], audit=start("warm"))
        name = "_create_runs" if backend == "postgres" else "_write_tx"
        real = getattr(store, name)

        async def committed_then_interrupted(*args):
            await real(*args)
            raise asyncio.CancelledError

        def committed_then_interrupted_sync(*args):
            real(*args)
            raise asyncio.CancelledError

        setattr(store, name, committed_then_interrupted if backend == "postgres" else committed_then_interrupted_sync)
        with pytest.raises(asyncio.CancelledError):
            await store.create_runs([(_run("lost", created=2.0, status=RunStatus.RUNNING), [_ev("lost", 1)], start("lost"))])
        setattr(store, name, real)
        assert await store.get_run("lost") is not None  # it did commit
        assert await store.create_run(_run("after", created=3.0, status=RunStatus.RUNNING), [_ev("after", 1)], audit=start("after"))
        entries = [e for e in await store.list_audit() if e.action == "run.start"]
        assert [e.target for e in entries] == ["warm", "lost", "after"]
        assert [e.cseq for e in entries] == sorted({e.cseq for e in entries})  # no place taken twice
        checked, problem = await client.verify_audit()
        assert problem is None and checked >= 3, problem
