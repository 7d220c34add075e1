"""Stores holding many runs (every backend): pages by cursor, counts, the timers due soon, group
commit of concurrent starts, and claims that find the few ready runs among many parked ones."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from store_helpers import end_entry as _end
from store_helpers import new_run as _run
from store_helpers import started as _ev

from podium import RunStatus
from podium.records import AuditEntry, Event, RunRecord


def _group(store, name: str):
    """The store's group of writes ``name`` (PostgreSQL: one per kind; SQLite: one for all), or None."""
    return getattr(store, name, None) or getattr(store, "writes", None)


async def _walk(store, size: int, **filters) -> list[str]:
    ids: list[str] = []
    before = None
    while True:
        page = await store.list_runs(limit=size, before=before, **filters)
        ids += [r.id for r in page]
        if len(page) < size:
            return ids
        before = (page[-1].created_at, page[-1].id)


async def test_pages_by_cursor_cover_every_run_once_in_order(store):
    # Ties on created_at are ordered by id: a page boundary inside a tie loses and repeats nothing.
    for i in range(23):
        status = RunStatus.WAITING if i % 3 else RunStatus.COMPLETED
        await store.create_run(_run(f"r{i:02d}", created=1000.0 + i // 4, workflow="ab"[i % 2], status=status))
    everything = [r.id for r in await store.list_runs(limit=1000)]
    assert len(everything) == 23
    for size in (1, 4, 5, 7, 23, 50):
        assert await _walk(store, size) == everything
    waiting_a = [r.id for r in await store.list_runs(workflow="a", status=[RunStatus.WAITING], limit=1000)]
    assert waiting_a and await _walk(store, 3, workflow="a", status=[RunStatus.WAITING]) == waiting_a


async def test_a_cursor_is_stable_while_new_runs_arrive(store):
    for i in range(10):
        await store.create_run(_run(f"old{i}", created=1000.0 + i))
    first = await store.list_runs(limit=4)
    for i in range(5):  # newer runs than the first page: they must not shift the next pages
        await store.create_run(_run(f"new{i}", created=5000.0 + i))
    rest = await store.list_runs(limit=100, before=(first[-1].created_at, first[-1].id))
    assert [r.id for r in first + rest] == [f"old{i}" for i in range(9, -1, -1)]


async def test_count_runs_by_status(store):
    for i, status in enumerate([RunStatus.WAITING] * 3 + [RunStatus.PENDING, RunStatus.COMPLETED]):
        await store.create_run(_run(f"r{i}", created=1000.0 + i, status=status))
    counts = await store.count_runs([RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING])
    assert counts == {RunStatus.PENDING: 1, RunStatus.RUNNING: 0, RunStatus.WAITING: 3}


async def test_due_timers_are_the_waiting_runs_due_by_then_earliest_first(store):
    now = time.time()
    await store.create_run(_run("late", created=1.0, wake_at=now + 500))
    await store.create_run(_run("soon", created=2.0, wake_at=now + 20))
    await store.create_run(_run("overdue", created=3.0, wake_at=now - 5))
    await store.create_run(_run("no-timer", created=4.0))
    await store.create_run(_run("running", created=5.0, status=RunStatus.RUNNING, wake_at=now))
    assert [rid for rid, _ in await store.due_timers(now + 60)] == ["overdue", "soon"]
    assert await store.due_timers(now + 60, limit=1) == [("overdue", now - 5)]


async def test_concurrent_starts_share_commits_and_each_id_is_created_once(store):
    ids = [f"k{i % 40}" for i in range(120)]  # each id started three times, at once
    results = await asyncio.gather(
        *(store.create_run(_run(rid, created=1000.0, status=RunStatus.RUNNING), [_ev(rid, 1)]) for rid in ids)
    )
    created = [rid for rid, ok in zip(ids, results, strict=True) if ok]
    assert sorted(created) == sorted(set(ids))
    assert len(await store.list_runs(limit=1000)) == 40
    for rid in set(ids):
        assert [e.seq for e in await store.load_events(rid)] == [1]


async def test_a_bad_start_fails_alone_in_its_group(store):
    good = [store.create_run(_run(f"g{i}", created=1000.0), [_ev(f"g{i}", 1)]) for i in range(5)]
    bad = store.create_run(_run("bad", created=1000.0), [_ev("bad", 1), _ev("bad", 1)])  # one seq twice
    results = await asyncio.gather(*good, bad, return_exceptions=True)
    assert results[:5] == [True] * 5
    assert isinstance(results[5], Exception)
    assert await store.get_run("bad") is None
    assert len(await store.list_runs(limit=100)) == 5


def _start(rid: str) -> AuditEntry:
    return AuditEntry(ts=1.0, actor="engine", action="run.start", target=rid)


def _starts_in_chain(entries: list[AuditEntry]) -> list[AuditEntry]:
    own = [e for e in entries if e.chain != "anchors" and e.chain is not None]
    assert len({e.chain for e in own}) <= 1  # one store, one chain
    assert [e.cseq for e in own] == list(range(1, len(own) + 1))  # no gap, no fork
    return own


async def test_grouped_starts_write_each_new_runs_audit_entry_in_the_same_commit(store):
    from podium.governance.audit import verify

    assert await store.create_run(_run("k0", created=1000.0), [_ev("k0", 1)], audit=_start("k0"))  # exists before
    ids = [f"k{i % 40}" for i in range(120)]  # each id started three times, at once
    results = await asyncio.gather(
        *(store.create_run(_run(rid, created=1000.0), [_ev(rid, 1)], audit=_start(rid)) for rid in ids)
    )
    assert sum(results) == 39 and not results[0]
    group = _group(store, "group")
    if group is not None:  # SQLite and PostgreSQL group the starts: far fewer commits than runs
        assert group.batches < 20
    entries = await store.list_audit(limit=10_000)
    starts = _starts_in_chain(entries)
    assert sorted(e.target for e in starts) == sorted(set(ids))  # one entry per run, only when it was created
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)
    assert verify(entries, store.audit_keys.all()) == (len(entries), None)


async def test_a_bad_start_in_an_audited_group_leaves_the_chain_whole(store):
    from podium.governance.audit import verify

    good = [store.create_run(_run(f"g{i}", created=1000.0), [_ev(f"g{i}", 1)], audit=_start(f"g{i}")) for i in range(5)]
    bad = store.create_run(_run("bad", created=1000.0), [_ev("bad", 1), _ev("bad", 1)], audit=_start("bad"))
    results = await asyncio.gather(*good, bad, return_exceptions=True)
    assert results[:5] == [True] * 5 and isinstance(results[5], Exception)
    assert await store.create_run(_run("after", created=1000.0), [_ev("after", 1)], audit=_start("after"))
    entries = await store.list_audit(limit=10_000)
    starts = _starts_in_chain(entries)
    assert sorted(e.target for e in starts) == sorted([*(f"g{i}" for i in range(5)), "after"])
    assert verify(entries, store.audit_keys.all()) == (len(entries), None)


async def test_claims_find_the_ready_runs_among_many_parked_ones(store):
    now = time.time()
    parked = [_run(f"p{i:03d}", created=1000.0 + i, wake_at=now + 3600 if i % 2 else None) for i in range(300)]
    for run in parked:
        await store.create_run(run)
    await store.create_run(_run("pending", created=2000.0, status=RunStatus.PENDING))
    await store.create_run(_run("due", created=2001.0, wake_at=now - 1))
    await store.create_run(_run("cancelled", created=2002.0))
    await store.request_cancel("cancelled")
    claimed = await store.claim_runs("me", lease_seconds=30, limit=100, now=now)
    assert sorted(r.id for r in claimed) == ["cancelled", "due", "pending"]
    assert await store.claim_runs("other", lease_seconds=30, limit=100, now=now) == []
    assert await store.unfinished_owners() == ["me"]


async def test_a_burst_of_wake_ups_is_sent_once_and_each_caller_gets_one_sent_after_it_asked():
    from podium.storage._group import Coalesce

    sent: list[int] = []
    gate = asyncio.Event()

    async def send() -> None:
        sent.append(len(sent))
        await gate.wait()

    wake = Coalesce(send)
    first = asyncio.ensure_future(wake())
    await asyncio.sleep(0)  # the first call is under way (held at the gate)
    burst = [asyncio.ensure_future(wake()) for _ in range(100)]
    await asyncio.sleep(0)
    assert sent == [0] and not any(b.done() for b in burst)  # they wait for a call of their own
    gate.set()
    await asyncio.gather(first, *burst)
    assert wake.calls == 2  # the first, then one for the whole burst


async def test_a_failed_wake_up_reaches_its_callers_and_the_next_call_tries_again():
    from podium.storage._group import Coalesce

    fail = [True]

    async def send() -> None:
        if fail[0]:
            raise ConnectionError("down")

    wake = Coalesce(send)
    with pytest.raises(ConnectionError):
        await wake()
    fail[0] = False
    await wake()
    assert wake.calls == 2


async def test_runs_started_without_executing_send_one_wake_up_per_burst_on_postgres(store_url):
    if not store_url.startswith("postgres"):
        pytest.skip("NOTIFY wake-ups are PostgreSQL's")
    import podium

    wf = podium.Workflow("burst")

    @wf.step
    def one() -> int:
        return 1

    async with podium.Client(store_url, workflows=[wf], execute=False) as api:
        await asyncio.gather(*(api.start(wf) for _ in range(50)))
        assert 1 <= api.store._notify.calls < 10  # type: ignore[attr-defined]


async def test_appends_of_many_runs_at_once_are_each_written_and_a_taken_seq_fails_alone(store):
    """Steps of many runs at the same moment (PostgreSQL groups them into shared transactions): each
    append lands, and one whose event is already written (another engine took the run) gets its
    own LeaseLost while the others of its group are written."""
    from podium import LeaseLost

    ids = [f"a{i}" for i in range(60)]
    for rid in ids:
        await store.create_run(_run(rid, created=1000.0, status=RunStatus.RUNNING), [_ev(rid, 1)])
    await asyncio.gather(*(store.append([_ev(rid, 2)]) for rid in ids))
    appends = getattr(store, "appends", None)
    if appends is not None:  # PostgreSQL groups them: fewer transactions than appends
        assert appends.batches < appends.runs
    results = await asyncio.gather(
        *(store.append([_ev(rid, 2 if rid == "a7" else 3)], {"status": RunStatus.RUNNING}) for rid in ids),
        return_exceptions=True,
    )
    assert isinstance(results[7], LeaseLost)
    assert [r for i, r in enumerate(results) if i != 7] == [None] * 59
    for rid in ids:
        assert [e.seq for e in await store.load_events(rid)] == ([1, 2] if rid == "a7" else [1, 2, 3])


async def test_runs_ending_together_write_their_audit_entries_in_chain_order(store):
    from podium.governance.audit import verify

    ids = [f"e{i}" for i in range(40)]
    for rid in ids:
        await store.create_run(_run(rid, created=1000.0, status=RunStatus.RUNNING), [_ev(rid, 1)], audit=_start(rid))
    bad = "e5"  # its end event is already written: the group is retried and only it fails
    await store.append([_ev(bad, 2)])
    results = await asyncio.gather(
        *(store.append([_ev(rid, 2)], {"status": RunStatus.COMPLETED}, audit=_end(rid)) for rid in ids),
        return_exceptions=True,
    )
    assert isinstance(results[5], Exception) and [r for i, r in enumerate(results) if i != 5] == [None] * 39
    entries = await store.list_audit(limit=10_000)
    own = _starts_in_chain(entries)
    assert sorted(e.target for e in own if e.action == "run.end") == sorted(set(ids) - {bad})
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)
    assert verify(entries, store.audit_keys.all()) == (len(entries), None)
    assert (await store.get_run("e0")).status is RunStatus.COMPLETED
    assert (await store.get_run(bad)).status is RunStatus.RUNNING  # its failed end changed nothing


async def test_runs_ending_at_the_same_moment_share_commits(store):
    ids = [f"t{i}" for i in range(30)]
    for rid in ids:
        await store.create_run(_run(rid, created=1000.0, status=RunStatus.RUNNING), [_ev(rid, 1)], audit=_start(rid))
    audited = _group(store, "audited")
    before = (audited.runs, audited.batches) if audited is not None else (0, 0)
    await asyncio.gather(*(store.append([_ev(rid, 2)], {"status": RunStatus.COMPLETED}, audit=_end(rid)) for rid in ids))
    if audited is not None:  # SQLite and PostgreSQL: fewer transactions than runs ended
        assert audited.runs - before[0] == 30 and audited.batches - before[1] < 30
    assert {(await store.get_run(rid)).status for rid in ids} == {RunStatus.COMPLETED}
    ends = [e for e in await store.list_audit(limit=1000) if e.action == "run.end"]
    assert sorted(e.target for e in ends) == sorted(ids)


async def test_a_write_cancelled_while_queued_is_not_made():
    from podium.storage._group import GroupWrite

    written: list[int] = []
    gate = asyncio.Event()

    async def write(items):
        await gate.wait()  # the first group is being written while the next ones queue
        written.extend(items)
        return [None] * len(items)

    group: GroupWrite[int, None] = GroupWrite(write)
    first = asyncio.ensure_future(group.submit(1))
    while group._task is None or group._queue:  # until the first group has left the queue
        await asyncio.sleep(0)
    dropped = asyncio.ensure_future(group.submit(2))
    kept = asyncio.ensure_future(group.submit(3))
    await asyncio.sleep(0)  # both queued behind the write under way
    dropped.cancel()
    with pytest.raises(asyncio.CancelledError):
        await dropped
    gate.set()
    await asyncio.gather(first, kept)
    assert written == [1, 3]


async def test_sqlite_steps_of_many_runs_join_the_transaction_being_gathered_and_a_conflict_fails_alone(tmp_path):
    """On SQLite the first write of a turn of the event loop is made at once; the run starts and
    ends that follow in the same turn are gathered into one transaction, and steps' events made
    meanwhile ride in it. One whose seq is already taken gets its own LeaseLost, and so do the later
    writes of its run in the group; the others land."""
    from podium import LeaseLost
    from podium.storage.sqlite import SQLiteStore

    async with SQLiteStore(f"sqlite:///{tmp_path}/g.db") as store:
        for rid in ("a", "b"):
            await store.create_run(_run(rid, created=1000.0, status=RunStatus.RUNNING), [_ev(rid, 1)])
        before = (store.writes.batches, store.writes.runs)

        def step(rid: str, seq: int):
            return store.append_one(rid, seq, "step_completed", 1.0, "s", 0, None, 1, '{"output":null}')

        ok = await asyncio.gather(
            store.create_run(_run("c", created=1001.0, status=RunStatus.RUNNING), [_ev("c", 1)]),  # at once
            store.create_run(_run("d", created=1002.0, status=RunStatus.RUNNING), [_ev("d", 1)]),  # gathers
            step("a", 2),
            step("b", 2),
        )
        assert ok == [True, True, None, None]
        assert store.writes.runs - before[1] == 4 and store.writes.batches - before[0] == 2  # rode together
        results = await asyncio.gather(
            store.create_run(_run("e", created=1003.0, status=RunStatus.RUNNING), [_ev("e", 1)]),
            store.create_run(_run("f", created=1004.0, status=RunStatus.RUNNING), [_ev("f", 1)]),
            step("a", 2),  # taken: written just above
            step("b", 3),
            step("a", 3),
            return_exceptions=True,
        )
        # a's seq 2 is another engine's: its seq 3, written after it by the same (stale) writer, is
        # refused with it, not written after the other engine's events (b's write lands)
        assert results[:2] == [True, True] and isinstance(results[2], LeaseLost) and results[3] is None
        assert isinstance(results[4], LeaseLost)
        assert [(e.seq, e.type) for e in await store.load_events("a")] == [(1, "run_started"), (2, "step_completed")]
        assert [e.seq for e in await store.load_events("b")] == [1, 2, 3]
        assert {r.id for r in await store.list_runs()} == {"a", "b", "c", "d", "e", "f"}


async def test_sqlite_a_lone_run_writes_its_steps_without_waiting_for_a_group(tmp_path):
    """One run alone: its starts, steps and end are written at once (no turn of the loop waited for
    a group that nobody joins)."""
    from podium.storage.sqlite import SQLiteStore

    async with SQLiteStore(f"sqlite:///{tmp_path}/l.db") as store:
        assert await store.create_run(_run("a", created=1000.0, status=RunStatus.RUNNING), [_ev("a", 1)], audit=_start("a"))
        assert not store.writes.gathering
        await store.append_one("a", 2, "step_completed", 1.0, "s", 0, None, 1, '{"output":null}')
        await store.append([_ev("a", 3)], {"status": RunStatus.COMPLETED}, audit=_end("a"))
        assert not store.writes.gathering and store.writes.batches == store.writes.runs == 2
        assert [e.seq for e in await store.load_events("a")] == [1, 2, 3]


async def test_sqlite_inbox_kept_when_another_process_migrates_the_store_under_a_running_one(tmp_path):
    """A store left at schema 8 (its triggers keep the inbox) by a process that does not migrate;
    another process migrates it (the triggers are dropped: the store's statements keep it now). The
    first process's next approval request must still reach the inbox."""
    from podium.storage.sqlite import SQLiteStore

    url = f"sqlite:///{tmp_path}/m.db"
    first = SQLiteStore(url)
    first.auto_migrate = False
    await first.open()
    try:
        await first.migrate(8)
        await first.create_run(_run("r1", created=1000.0, status=RunStatus.RUNNING), [_ev("r1", 1)])
        async with SQLiteStore(url) as other:  # migrates to the latest schema
            assert await other.schema_version() >= 9
        ask = '{"signal":"approval:go","deadline":null,"approval":{"title":"go?"}}'
        await first.append([Event(run_id="r1", seq=2, type="step_waiting", ts=5.0, step="s/signal:approval:go", data=ask)])
        assert [a.name for a in await first.open_approvals()] == ["approval:go"]
    finally:
        await first.close()


async def test_sqlite_a_run_cancelled_while_its_steps_event_is_gathered_leaves_no_hole_in_its_log(tmp_path):
    """Review: a step's event that joins a group being gathered (other runs starting at that moment)
    waits in the group's queue. A run cancelled right then (its step's task cancelled) must not lose
    that event while its next ones (the run's end, seq+1) are written: the log would have a hole
    and the end's audit digest, which covers the lost event, would not match the stored history."""
    from podium import Client, Workflow
    from podium.governance.audit import check_run

    async with Client(f"sqlite:///{tmp_path}/h.db", poll_interval=0.05) as client:
        store = client.store
        wf = Workflow("holes")
        held = asyncio.Event()
        others: list[asyncio.Future] = []

        @wf.step
        async def one():
            # Other runs start at this moment: their group is being written while this step's event
            # is made (the audit chain, held here, keeps it being written until the test lets go).
            await store._own_chain().lock.acquire()
            held.set()
            for rid in ("x1", "x2"):
                others.append(asyncio.ensure_future(store.create_run(_run(rid, created=1.0), [_ev(rid, 1)], audit=_start(rid))))
            while not store.writes.gathering or store.writes._queue:  # the second start's group is being written
                await asyncio.sleep(0)
            return 1

        @wf.step
        async def two(one):
            await asyncio.sleep(30)

        handle = await client.start(wf)
        await asyncio.wait_for(held.wait(), 5)

        def queued(type_: str) -> bool:
            return any(
                not isinstance(item[0], RunRecord) and item[0][0].run_id == handle.id and item[0][0].type == type_
                for item, _, _ in store.writes._queue
            )

        for _ in range(1000):  # the step's event reaches the queue within a few turns of the loop
            if queued("step_completed"):
                break
            await asyncio.sleep(0)
        assert queued("step_completed")
        cancel = asyncio.ensure_future(client.driving.cancel(handle.id))  # as the worker does on a cancel request
        for _ in range(1000):
            if queued("run_cancelled"):
                break
            await asyncio.sleep(0)
        store._own_chain().lock.release()
        await asyncio.wait_for(cancel, 5)
        await asyncio.gather(*others)
        events = await store.load_events(handle.id)
        assert [e.seq for e in events] == list(range(1, len(events) + 1)), [(e.seq, e.type) for e in events]
        run = await store.get_run(handle.id)
        assert run.status is RunStatus.CANCELLED
        assert check_run(handle.id, run, events, await store.audit_for(handle.id)) is None


async def test_a_write_that_lands_is_made_even_if_its_caller_is_cancelled_while_queued():
    """``submit(lands=True)`` (a run's step event): cancelling its caller does not take it out of
    the queue; the writes queued after it stay after it."""
    from podium.storage._group import GroupWrite

    written: list[int] = []
    gate = asyncio.Event()

    async def write(items):
        await gate.wait()
        written.extend(items)
        return [None] * len(items)

    group: GroupWrite[int, None] = GroupWrite(write)
    first = asyncio.ensure_future(group.submit(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # the first group is being written
    step = asyncio.ensure_future(group.submit(2, lands=True))
    after = asyncio.ensure_future(group.submit(3, lands=True))
    await asyncio.sleep(0)
    step.cancel()
    gate.set()
    await asyncio.gather(first, after)
    assert step.cancelled() and written == [1, 2, 3]


async def test_list_runs_matches_a_plain_filter_for_every_combination_of_filters_and_pages(store):
    """Review of the per-status index ranges (SQLite migration 8): every mix of workflow, statuses,
    parent, cursor and offset gives the runs a plain filter and sort gives (ties in created_at too)."""
    import itertools
    import random

    rnd = random.Random(7)
    statuses = list(RunStatus)
    runs = []
    for i in range(90):
        parent = rnd.choice([None, None, "p0", "p1"])
        r = _run(
            f"r{i:03d}", created=float(rnd.randint(1, 25)), workflow=rnd.choice(["w1", "w2"]),
            status=rnd.choice(statuses), parent_run_id=parent,
        )  # fmt: skip
        runs.append(r)
        await store.create_run(r)

    def plain(workflow, status, parent, before, offset, limit):
        rows = [
            r for r in runs
            if (workflow is None or r.workflow == workflow) and (status is None or r.status in status)
            and (parent is None or r.parent_run_id == parent) and (before is None or (r.created_at, r.id) < before)
        ]  # fmt: skip
        rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return [r.id for r in rows[offset : offset + limit]]

    status_sets = [None, [RunStatus.WAITING], [RunStatus.COMPLETED, RunStatus.FAILED], statuses, [RunStatus.RUNNING] * 2]
    cursors = [None, (12.0, "r045"), (12.0, "r999"), (1.0, "r000")]
    for workflow, status, parent, before, offset, limit in itertools.product(
        [None, "w1"], status_sets, [None, "p1"], cursors, [0, 3], [1, 7, 100]
    ):
        got = [r.id for r in await store.list_runs(workflow=workflow, status=status, parent_run_id=parent, before=before, offset=offset, limit=limit)]
        assert got == plain(workflow, status, parent, before, offset, limit), (workflow, status, parent, before, offset, limit)
    # paging by cursor visits every run once
    seen: list[str] = []
    before = None
    while True:
        page = await store.list_runs(limit=7, before=before)
        if not page:
            break
        seen += [r.id for r in page]
        before = (page[-1].created_at, page[-1].id)
    assert seen == plain(None, None, None, None, 0, 1000)


async def test_a_mixed_group_with_a_taken_end_fails_that_end_alone_and_keeps_the_chain_and_inbox(store):
    """Review (SQLite: one group for starts, steps and ends): starts, steps (one asking for an
    approval) and ends with audit entries made together, one end's seq taken. That end alone gets
    LeaseLost; every other write lands once, the audit chain has no gap or fork, and the inbox holds
    the request asked by the group's step."""
    from podium import LeaseLost
    from podium.governance.audit import verify

    for rid in ("e0", "e1", "e2", "s0"):
        await store.create_run(_run(rid, created=1000.0, status=RunStatus.RUNNING), [_ev(rid, 1)], audit=_start(rid))
    await store.append([_ev("e1", 2)])  # e1's seq 2 is taken: its end below conflicts
    ask = '{"signal":"approval:go","deadline":null,"approval":{"title":"go?"}}'
    waits = Event(run_id="s0", seq=2, type="step_waiting", ts=5.0, step="s/signal:approval:go", data=ask)
    results = await asyncio.gather(
        store.create_run(_run("n0", created=1001.0), [_ev("n0", 1)], audit=_start("n0")),
        store.create_run(_run("n1", created=1002.0), [_ev("n1", 1)], audit=_start("n1")),
        *(store.append([_ev(rid, 2)], {"status": RunStatus.COMPLETED}, audit=_end(rid)) for rid in ("e0", "e1", "e2")),
        store.append([waits], {"status": RunStatus.WAITING}),
        return_exceptions=True,
    )
    assert results[:3] == [True, True, None] and isinstance(results[3], LeaseLost) and results[4:] == [None, None]
    assert [(a.event.run_id, a.name) for a in await store.open_approvals()] == [("s0", "approval:go")]
    assert (await store.get_run("e1")).status is RunStatus.RUNNING
    entries = await store.list_audit(limit=10_000)
    own = [e for e in entries if e.chain != "anchors" and e.chain is not None]
    assert [e.cseq for e in own] == list(range(1, len(own) + 1))
    assert sorted((e.action, e.target) for e in own if e.action == "run.end") == [("run.end", "e0"), ("run.end", "e2")]
    assert verify(entries, store.audit_keys.all()) == (len(entries), None)


async def test_sqlite_a_process_of_the_previous_release_still_fills_the_inbox_after_migration_9(tmp_path):
    """Review: a rolling upgrade. One process (new code) migrates the file past schema 9 (no event
    triggers); another, still on the previous release, asks for an approval the way it did (one plain
    INSERT of the event, relying on the triggers), then parks the run. The request is listed once the
    run parks; a later timeout of that wait, written the old way, leaves the inbox when it parks again."""
    import sqlite3

    from podium.storage.sqlite import _EVENT_INSERT, SQLiteStore

    url = f"sqlite:///{tmp_path}/r.db"
    async with SQLiteStore(url) as store:
        assert await store.schema_version() >= 10
        await store.create_run(_run("r1", created=1000.0, status=RunStatus.RUNNING), [_ev("r1", 1)])
        old = sqlite3.connect(f"{tmp_path}/r.db", isolation_level=None)  # 11c98fa's statements
        ask = '{"signal":"approval:go","deadline":null,"approval":{"title":"go?"}}'
        old.execute(_EVENT_INSERT, ("r1", 2, "step_waiting", 5.0, "s/signal:approval:go", 0, None, 1, ask))
        park = "UPDATE runs SET status=?, wake_at=?, owner=NULL, lease_expires_at=NULL WHERE id=?"
        old.execute("BEGIN IMMEDIATE")
        old.execute(_EVENT_INSERT, ("r1", 3, "run_waiting", 5.0, None, 0, None, 0, None))
        old.execute(park, ("waiting", None, "r1"))
        old.execute("COMMIT")
        [asked] = await store.open_approvals()
        assert (asked.name, asked.event.seq, asked.event.ts, asked.workflow) == ("approval:go", 2, 5.0, "wf")
        old.execute("UPDATE runs SET status='running' WHERE id='r1'")  # taken up again; the wait times out
        done = '{"started":5,"signal":"approval:go","timed_out":true,"output":null}'
        old.execute(_EVENT_INSERT, ("r1", 4, "step_completed", 9.0, "s/signal:approval:go", 0, None, 1, done))
        old.execute(park, ("waiting", 99.0, "r1"))  # parks on something else
        old.close()
        assert await store.open_approvals() == []


async def test_sqlite_a_run_that_parks_keeps_exactly_its_open_requests(tmp_path):
    """Review 2: schema 10's park trigger lists a run's requests again from its events. It must list
    what the store's own statements listed: not an answered request, one that timed out, a plain
    signal wait, a request whose decision (signal) was stored before it was asked, nor a request
    of an earlier loop iteration that timed out; a request asked by two map items once."""
    from podium.storage.sqlite import SQLiteStore

    def ask(name: str, approval: bool = True) -> str:
        extra = {"approval": {"title": "t"}} if approval else {}
        return json.dumps({"signal": name, "deadline": None, **extra})

    def done(name: str, timed_out: bool = False) -> str:
        extra = {"timed_out": True} if timed_out else {}
        return json.dumps({"started": 1, "signal": name, **extra, "output": None})

    async with SQLiteStore(f"sqlite:///{tmp_path}/p.db") as store:
        await store.create_run(_run("r", created=1.0, status=RunStatus.RUNNING), [_ev("r", 1)])
        # a decision stored before it was asked (by an older release, or copied): only a copy now
        assert await store.send_signal("r", "approval:early", '"yes"', now=1.0, copied=True)
        seq = 1
        rows = [
            ("step_waiting", "a/signal:approval:a", 0, None, ask("approval:a")),
            ("step_waiting", "b/signal:approval:b", 0, None, ask("approval:b")),
            ("step_completed", "b/signal:approval:b", 0, None, done("approval:b", True)),
            ("step_waiting", "p/signal:plain", 0, None, ask("plain", approval=False)),
            ("step_waiting", "m/signal:approval:m", 0, 0, ask("approval:m")),
            ("step_waiting", "m/signal:approval:m", 0, 1, ask("approval:m")),
            ("step_waiting", "e/signal:approval:early", 0, None, ask("approval:early")),
            ("step_waiting", "l/signal:approval:l", 0, None, ask("approval:l")),
            ("step_completed", "l/signal:approval:l", 0, None, done("approval:l", True)),
            ("step_waiting", "l/signal:approval:l", 1, None, ask("approval:l")),
            ("step_waiting", "o/signal:approval:o", 0, None, ask("approval:o")),
        ]
        for type_, step, it, idx, data in rows:
            seq += 1
            await store.append([Event(run_id="r", seq=seq, type=type_, ts=float(seq), step=step, iteration=it, index=idx, attempt=1, data=data)])
        await store.send_signal("r", "approval:a", '"ok"', now=20.0)  # answered (its wait completes later)
        before = [(a.name, a.event.seq) for a in await store.open_approvals()]
        assert before == [("approval:m", 6), ("approval:l", 11), ("approval:o", 12)]
        seq += 1  # parks on a timer while the requests are open
        await store.append([Event(run_id="r", seq=seq, type="run_waiting", ts=30.0)], {"status": RunStatus.WAITING, "wake_at": 99.0})
        assert [(a.name, a.event.seq) for a in await store.open_approvals()] == before
