"""The store conformance suite: every backend (memory, SQLite, PostgreSQL) must pass all of it."""

from __future__ import annotations

import json
import time

import pytest

from podium import LeaseLost, NotFound, RunStatus, open_store
from podium.records import Event, RunRecord


def _run(
    rid: str, *, workflow: str = "wf", status: RunStatus = RunStatus.RUNNING, created: float = 0.0, **kw
) -> RunRecord:
    return RunRecord(
        id=rid,
        workflow=workflow,
        version="1",
        status=status,
        input='{"a":1}',
        created_at=created or time.time(),
        **kw,
    )


def _ev(rid: str, seq: int, type: str = "step_completed", **kw) -> Event:
    return Event(run_id=rid, seq=seq, type=type, ts=time.time(), **kw)


async def test_create_and_get_round_trip(store):
    run = _run(
        "r1",
        parent_run_id="p",
        parent_step="s",
        forked_from="f",
        fork_step="fs",
        workflow_ref="mod:wf",
        owner="me",
        lease_expires_at=123.5,
        started_at=1.5,
    )
    assert await store.create_run(run, [_ev("r1", 1, "run_started", data='{"x":1}')])
    got = await store.get_run("r1")
    assert got == run
    events = await store.load_events("r1")
    assert [(e.seq, e.type, e.data) for e in events] == [(1, "run_started", '{"x":1}')]


async def test_existing_runs_names_the_ids_that_are_runs(store):
    await store.create_run(_run("ex-1"))
    await store.create_run(_run("ex-2"))
    assert await store.existing_runs([]) == set()
    assert await store.existing_runs(["ex-1", "nope", "ex-2", "ex-1"]) == {"ex-1", "ex-2"}
    many = [f"absent-{i}" for i in range(1200)] + ["ex-2"]  # more than one query's parameters
    assert await store.existing_runs(many) == {"ex-2"}


async def test_runs_read_at_the_same_moment_each_get_their_own_record(store):
    import asyncio

    await store.create_run(_run("r-1"))
    await store.create_run(_run("r-2"))
    a, b, c, missing = await asyncio.gather(
        store.get_run("r-1"), store.get_run("r-1"), store.get_run("r-2"), store.get_run("nope")
    )
    assert (a.id, b.id, c.id, missing) == ("r-1", "r-1", "r-2", None)
    a.status = RunStatus.FAILED  # a caller changing its copy changes nobody else's
    assert b.status is RunStatus.RUNNING


async def test_in_process_only_for_memory(store, store_url):
    assert store.in_process is store_url.startswith("memory://")


async def test_get_missing_run_is_none(store):
    assert await store.get_run("nope") is None
    assert await store.load_events("nope") == []


async def test_create_is_idempotent_by_id(store):
    assert await store.create_run(_run("r1"), [_ev("r1", 1)])
    assert not await store.create_run(_run("r1", workflow="other"), [_ev("r1", 1, "x"), _ev("r1", 2)])
    assert (await store.get_run("r1")).workflow == "wf"
    assert [e.type for e in await store.load_events("r1")] == ["step_completed"]


async def test_event_fields_round_trip(store):
    await store.create_run(_run("r1"))
    ev = Event(
        run_id="r1",
        seq=1,
        type="step_completed",
        ts=12.25,
        step="s",
        iteration=2,
        index=7,
        attempt=3,
        data="{}",
    )
    await store.append([ev])
    assert await store.load_events("r1") == [ev]


async def test_events_in_order_and_after(store):
    await store.create_run(_run("r1"), [_ev("r1", 1)])
    await store.append([_ev("r1", 2), _ev("r1", 3)])
    await store.append([_ev("r1", 4)])
    assert [e.seq for e in await store.load_events("r1")] == [1, 2, 3, 4]
    assert [e.seq for e in await store.load_events("r1", after=2)] == [3, 4]


async def test_duplicate_seq_is_lease_lost_and_batch_is_atomic(store):
    await store.create_run(_run("r1"), [_ev("r1", 1)])
    with pytest.raises(LeaseLost):
        await store.append([_ev("r1", 1)])
    with pytest.raises(LeaseLost):
        await store.append([_ev("r1", 2), _ev("r1", 1)], {"status": RunStatus.COMPLETED})
    assert [e.seq for e in await store.load_events("r1")] == [1]
    assert (await store.get_run("r1")).status is RunStatus.RUNNING


async def test_append_to_unknown_run(store):
    with pytest.raises((NotFound, LeaseLost)):
        await store.append([_ev("ghost", 1)])


async def test_append_updates_run_in_same_transaction(store):
    await store.create_run(_run("r1", owner="me", lease_expires_at=time.time() + 60), [_ev("r1", 1)])
    await store.append(
        [_ev("r1", 2, "run_completed")],
        {"status": RunStatus.COMPLETED, "output": '"ok"', "finished_at": 99.0},
    )
    run = await store.get_run("r1")
    assert (run.status, run.output, run.finished_at) == (RunStatus.COMPLETED, '"ok"', 99.0)
    assert run.owner is None and run.lease_expires_at is None


async def test_list_runs_filters_and_pages(store):
    for i in range(5):
        await store.create_run(_run(f"r{i}", workflow="a" if i % 2 else "b", created=1000.0 + i))
    await store.create_run(
        _run("c1", workflow="a", created=2000.0, parent_run_id="r1", status=RunStatus.FAILED)
    )
    assert [r.id for r in await store.list_runs()] == ["c1", "r4", "r3", "r2", "r1", "r0"]
    assert [r.id for r in await store.list_runs(workflow="a")] == ["c1", "r3", "r1"]
    assert [r.id for r in await store.list_runs(status=[RunStatus.FAILED])] == ["c1"]
    assert [r.id for r in await store.list_runs(parent_run_id="r1")] == ["c1"]
    assert [r.id for r in await store.list_runs(limit=2, offset=1)] == ["r4", "r3"]


async def test_claim_takes_only_free_unfinished_runs(store):
    now = time.time()
    await store.create_run(_run("free", created=1.0))
    await store.create_run(_run("held", created=2.0, owner="other", lease_expires_at=now + 60))
    await store.create_run(_run("expired", created=3.0, owner="other", lease_expires_at=now - 1))
    await store.create_run(_run("done", created=4.0, status=RunStatus.COMPLETED))
    await store.create_run(_run("pending", created=5.0, status=RunStatus.PENDING))
    claimed = await store.claim_runs("me", lease_seconds=30, limit=10, now=now)
    assert [r.id for r in claimed] == ["free", "expired", "pending"]
    assert all(r.owner == "me" and r.lease_expires_at == pytest.approx(now + 30) for r in claimed)
    assert await store.claim_runs("third", lease_seconds=30, limit=10, now=now) == []
    assert (await store.get_run("held")).owner == "other"


async def test_claim_limit_ids_and_steal_from_dead_owner(store):
    now = time.time()
    for i in range(3):
        await store.create_run(_run(f"r{i}", created=float(i + 1), owner="dead", lease_expires_at=now + 60))
    assert await store.claim_runs("me", lease_seconds=5, limit=10, now=now) == []
    got = await store.claim_runs("me", lease_seconds=5, limit=1, now=now, steal_from=["dead"])
    assert [r.id for r in got] == ["r0"]
    got = await store.claim_runs(
        "me", lease_seconds=5, limit=10, now=now, run_ids=["r2"], steal_from=["dead"]
    )
    assert [r.id for r in got] == ["r2"]
    assert await store.claim_runs("me", lease_seconds=5, limit=10, now=now, run_ids=[]) == []


async def test_renew_and_release(store):
    now = time.time()
    await store.create_run(_run("mine", owner="me", lease_expires_at=now + 1))
    await store.create_run(_run("theirs", owner="other", lease_expires_at=now + 1))
    kept = await store.renew_leases("me", ["mine", "theirs", "ghost"], lease_seconds=100, now=now)
    assert kept == {"mine"}
    assert (await store.get_run("mine")).lease_expires_at == pytest.approx(now + 100)
    assert (await store.get_run("theirs")).lease_expires_at == pytest.approx(now + 1)
    await store.release_runs("me", ["mine", "theirs"])
    assert (await store.get_run("mine")).owner is None
    assert (await store.get_run("theirs")).owner == "other"
    assert await store.renew_leases("me", [], lease_seconds=1, now=now) == set()


async def test_cancel_requests(store):
    await store.create_run(_run("r1"))
    await store.create_run(_run("r2"))
    await store.create_run(_run("done", status=RunStatus.COMPLETED))
    await store.request_cancel("r1")
    await store.request_cancel("done")
    assert await store.cancel_requests(["r1", "r2", "done"]) == ["r1"]
    assert (await store.get_run("r1")).cancel_requested
    assert not (await store.get_run("done")).cancel_requested
    with pytest.raises(NotFound):
        await store.request_cancel("ghost")
    assert await store.cancel_requests([]) == []


async def test_cancel_requests_among_many_runs_and_many_asked(store):
    """The runs an engine drives are many (more than SQLite binds in one statement) and those asked
    to cancel among all runs are more than the few an engine drives (a whole queue cancelled):
    each answer is still exactly those of the runs given that were asked, in their order."""
    ids = [f"r{i:05d}" for i in range(1200)]
    await store.create_runs([(_run(rid, status=RunStatus.PENDING), [], None) for rid in ids])
    for rid in ids[::7]:
        await store.request_cancel(rid)
    asked = ids[::7]
    assert await store.cancel_requests(ids) == asked
    assert await store.cancel_requests(list(reversed(ids))) == list(reversed(asked))
    few = [ids[0], ids[1], ids[14], "ghost"]  # 172 asked in the store, more than a bound for 4 runs
    assert await store.cancel_requests(few) == [ids[0], ids[14]]


async def test_unfinished_owners(store):
    await store.create_run(_run("a", owner="o1"))
    await store.create_run(_run("b", owner="o2", status=RunStatus.PENDING))
    await store.create_run(_run("c", owner="o3", status=RunStatus.COMPLETED))
    await store.create_run(_run("d"))
    assert await store.unfinished_owners() == ["o1", "o2"]


async def test_large_and_unicode_payloads(store):
    big = '"' + "x" * 8_000_000 + '"'
    await store.create_run(_run("r1"), [_ev("r1", 1, data='{"output":"héllo ✓ 日本"}')])
    await store.append([_ev("r1", 2, data=big)], {"status": RunStatus.COMPLETED, "output": big})
    events = await store.load_events("r1")
    assert events[0].data == '{"output":"héllo ✓ 日本"}'
    assert events[1].data == big
    assert (await store.get_run("r1")).output == big


async def test_reopen_keeps_everything(store_url):
    if store_url.startswith("memory"):
        pytest.skip("the memory store keeps nothing across instances, by design")
    s = open_store(store_url)
    await s.open()
    await s.create_run(_run("r1"), [_ev("r1", 1)])
    await s.close()
    s2 = open_store(store_url)
    await s2.open()
    await s2.open()  # opening twice is harmless; migrations are applied once
    assert (await s2.get_run("r1")).id == "r1"
    assert len(await s2.load_events("r1")) == 1
    await s2.close()
    await s2.close()


async def test_new_fields_round_trip(store):
    run = _run(
        "r1", queue="bulk", priority=5, tenant="acme", labels="gpu", wake_at=12.5, status=RunStatus.WAITING
    )
    await store.create_run(run)
    assert await store.get_run("r1") == run


async def test_signals_first_one_wins_and_wake_a_waiting_run(store):
    now = time.time()
    await store.create_run(_run("r1", status=RunStatus.WAITING))
    assert await store.claim_runs("me", lease_seconds=5, limit=5, now=now) == []  # waiting, no timer
    assert await store.send_signal("r1", "approve", '{"ok":true}', now=now)
    assert not await store.send_signal("r1", "approve", '{"ok":false}', now=now)
    assert await store.get_signals("r1") == {"approve": '{"ok":true}'}
    assert await store.get_signals("ghost") == {}
    claimed = await store.claim_runs("me", lease_seconds=5, limit=5, now=now + 0.001)
    assert [r.id for r in claimed] == ["r1"]
    assert claimed[0].status is RunStatus.RUNNING and claimed[0].wake_at is None
    with pytest.raises(NotFound):
        await store.send_signal("ghost", "x", None, now=now)


async def test_waiting_runs_wake_at_their_timer(store):
    now = time.time()
    await store.create_run(_run("later", status=RunStatus.WAITING, wake_at=now + 60))
    await store.create_run(_run("due", status=RunStatus.WAITING, wake_at=now - 1))
    assert [r.id for r in await store.claim_runs("me", lease_seconds=5, limit=5, now=now)] == ["due"]


async def test_going_to_waiting_releases_the_lease(store):
    await store.create_run(_run("r1", owner="me", lease_expires_at=time.time() + 60), [_ev("r1", 1)])
    await store.append([_ev("r1", 2, "run_waiting")], {"status": RunStatus.WAITING, "wake_at": 99.0})
    run = await store.get_run("r1")
    assert (run.status, run.owner, run.wake_at) == (RunStatus.WAITING, None, 99.0)


async def test_cancel_request_makes_a_waiting_run_claimable(store):
    await store.create_run(_run("r1", status=RunStatus.WAITING))
    await store.request_cancel("r1")
    assert [r.id for r in await store.claim_runs("me", lease_seconds=5, limit=5, now=time.time())] == ["r1"]


async def test_claim_skips_the_runs_named(store):
    now = time.time()
    for i in range(3):
        await store.create_run(_run(f"r{i}", created=float(i + 1)))
    await store.create_run(_run("parked", created=4.0, status=RunStatus.WAITING, wake_at=now - 1))
    got = await store.claim_runs("me", lease_seconds=5, limit=1, now=now, skip=["r0", "parked", "unknown"])
    assert [r.id for r in got] == ["r1"]  # the oldest run not skipped, not the oldest run
    got = await store.claim_runs("me", lease_seconds=5, limit=10, now=now, skip=["r0", "parked"])
    assert [r.id for r in got] == ["r2"]
    assert await store.claim_runs("me", lease_seconds=5, limit=10, now=now, run_ids=["r0"], skip=["r0"]) == []
    got = await store.claim_runs("me", lease_seconds=5, limit=10, now=now)
    assert [r.id for r in got] == ["r0", "parked"]


async def test_claim_skips_the_versions_named(store):
    """An engine leaves alone the runs of versions it could not load: one entry per version (with
    the runs' ``workflow_ref``), however many runs it has."""
    now = time.time()
    for i in range(3):
        await store.create_run(_run(f"old{i}", created=float(i + 1)))  # wf@1, no reference
    await store.create_run(_run("ref", created=4.0, workflow_ref="mod:wf"))  # wf@1 from a reference
    await store.create_run(_run("other", created=5.0, workflow="other"))
    gone = [("wf", "1", ""), ("nothing", "9", "")]
    got = await store.claim_runs("me", lease_seconds=5, limit=10, now=now, skip_versions=gone)
    assert [r.id for r in got] == ["ref", "other"]
    got = await store.claim_runs("me", lease_seconds=5, limit=10, now=now, skip_versions=[("wf", "2", "")], skip=["old1"])
    assert [r.id for r in got] == ["old0", "old2"]


async def test_claim_by_queue_label_and_priority(store):
    now = time.time()
    await store.create_run(_run("low", created=1.0, queue="q"))
    await store.create_run(_run("high", created=2.0, queue="q", priority=10))
    await store.create_run(_run("other", created=0.5, queue="other"))
    await store.create_run(_run("gpu", created=0.1, queue="q", labels="gpu"))
    await store.create_run(_run("gpu2", created=0.2, queue="q", labels="gpu,big"))
    got = await store.claim_runs("cpu-worker", lease_seconds=5, limit=10, now=now, queues=["q"], labels=[])
    assert [r.id for r in got] == ["high", "low"]
    got = await store.claim_runs(
        "gpu-worker", lease_seconds=5, limit=10, now=now, queues=["q"], labels=["gpu"]
    )
    assert [r.id for r in got] == ["gpu"]
    got = await store.claim_runs("any", lease_seconds=5, limit=10, now=now)  # labels=None: any
    assert [r.id for r in got] == ["gpu2", "other"]


async def test_queue_concurrency_limit_counts_held_runs(store):
    now = time.time()
    await store.create_run(_run("held", created=1.0, queue="q", owner="w1", lease_expires_at=now + 60))
    for i in range(3):
        await store.create_run(_run(f"r{i}", created=2.0 + i, queue="q"))
    got = await store.claim_runs("w2", lease_seconds=5, limit=10, now=now, queue_limits={"q": 2})
    assert [r.id for r in got] == ["r0"]
    assert await store.claim_runs("w3", lease_seconds=5, limit=10, now=now, queue_limits={"q": 2}) == []


async def test_fair_between_tenants(store):
    now = time.time()
    for i in range(6):
        await store.create_run(_run(f"flood{i}", created=1.0 + i, tenant="big"))
    await store.create_run(_run("small0", created=100.0, tenant="small"))
    await store.create_run(_run("small1", created=101.0, tenant="small"))
    got = [r.id for r in await store.claim_runs("w", lease_seconds=5, limit=4, now=now)]
    assert got == ["flood0", "small0", "flood1", "small1"]


async def test_audit_chain_is_linear_and_ordered(store):
    from podium.governance.audit import AuditEntry, verify

    for i in range(5):
        await store.append_audit(
            AuditEntry(ts=float(i), actor="a", action=f"act{i}", target="t", data=json.dumps({"i": i}))
        )
    entries = await store.list_audit()
    own = [e for e in entries if e.chain != "anchors"]
    assert [e.cseq for e in own] == [1, 2, 3, 4, 5] and len({e.chain for e in own}) == 1
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)
    assert own[1].prev_hash == own[0].hash
    assert entries[0].action == "audit.anchor" and entries[0].target == own[0].chain  # registered first
    assert verify(entries, store.audit_keys.all()) == (len(entries), None)
    assert [e.seq for e in await store.list_audit(after=entries[2].seq)] == [e.seq for e in entries[3:]]
    assert [e.seq for e in await store.list_audit(limit=2)] == [e.seq for e in entries[:2]]


async def test_audit_entry_written_with_the_run_it_describes(store):
    """A start anchor is written by the run's creation, and not at all when the run existed; an end
    anchor by the run's final write, and not at all when that write is refused."""
    from podium.errors import LeaseLost
    from podium.governance.audit import AuditEntry, verify

    def anchor(action: str) -> AuditEntry:
        return AuditEntry(ts=1.0, actor="engine", action=action, target="r1")

    assert await store.create_run(_run("r1"), [_ev("r1", 1)], audit=anchor("run.start"))
    assert not await store.create_run(_run("r1"), [_ev("r1", 1)], audit=anchor("run.start"))
    with pytest.raises(LeaseLost):
        await store.append([_ev("r1", 1)], {"status": RunStatus.COMPLETED}, audit=anchor("run.end"))
    await store.append([_ev("r1", 2)], {"status": RunStatus.COMPLETED}, audit=anchor("run.end"))
    entries = await store.list_audit()
    assert [e.action for e in entries if e.target == "r1"] == ["run.start", "run.end"]
    assert verify(entries, store.audit_keys.all()) == (len(entries), None)


async def test_concurrent_audit_appends_keep_every_chain(store_url):
    import asyncio

    from podium.governance.audit import AuditEntry, verify

    stores = (
        [open_store(store_url) for _ in range(3)]
        if not store_url.startswith("memory")
        else [open_store(store_url)]
    )
    for s in stores:
        await s.open()
    try:
        await asyncio.gather(
            *(
                s.append_audit(AuditEntry(ts=1.0, actor=f"w{i}", action="x"))
                for i in range(30)
                for s in stores
            )
        )
        for s in stores:
            await s.anchor_audit()
        entries = await stores[0].list_audit()
        assert len([e for e in entries if e.action == "x"]) == 30 * len(stores)
        assert len({e.chain for e in entries if e.action == "x"}) == len(stores)
        assert verify(entries, stores[0].audit_keys.all())[1] is None
    finally:
        for s in stores:
            await s.close()


async def test_settings(store):
    assert await store.kv_get("users", "ada") is None
    await store.kv_put("users", "ada", '{"roles":["admin"]}')
    await store.kv_put("users", "bob", "{}")
    await store.kv_put("users", "bob", '{"roles":["viewer"]}')
    await store.kv_put("tokens", "h1", "{}")
    assert await store.kv_get("users", "bob") == '{"roles":["viewer"]}'
    assert await store.kv_list("users") == {"ada": '{"roles":["admin"]}', "bob": '{"roles":["viewer"]}'}
    assert (await store.kv_count("users"), await store.kv_count("tokens")) == (2, 1)
    await store.kv_put("users", "ada", None)
    assert await store.kv_list("users") == {"bob": '{"roles":["viewer"]}'}
    assert await store.kv_list("nothing") == {} and await store.kv_count("nothing") == 0
    assert await store.kv_count("users") == 1


async def test_counters_add_up_atomically(store_url):
    """kv_incr from several store instances (processes share a database the same way) loses no add."""
    import asyncio

    stores = (
        [open_store(store_url) for _ in range(3)]
        if not store_url.startswith("memory")
        else [open_store(store_url)]
    )
    for s in stores:
        await s.open()
    try:
        assert await stores[0].kv_incr("budget", "day", 1.5) == 1.5
        await asyncio.gather(*(s.kv_incr("budget", "day", 0.25) for _ in range(20) for s in stores))
        assert float(await stores[0].kv_get("budget", "day")) == pytest.approx(1.5 + 0.25 * 20 * len(stores))
        assert await stores[-1].kv_incr("budget", "other", -2) == -2
    finally:
        for s in stores:
            await s.close()


async def test_a_swap_writes_only_over_the_value_it_expects(store_url):
    """kv_swap: a compare-and-set (a model's owners are claimed with it). Of writers racing from
    several store instances over the same value, exactly one wins."""
    import asyncio

    stores = [open_store(store_url) for _ in range(3)] if not store_url.startswith("memory") else [open_store(store_url)]
    for s in stores:
        await s.open()
    try:
        first, last = stores[0], stores[-1]
        assert await first.kv_swap("owners", "m", None, None)  # absent, as expected: nothing to do
        assert await first.kv_swap("owners", "m", None, '["a"]')
        assert not await last.kv_swap("owners", "m", None, '["b"]')  # not absent any more
        assert not await last.kv_swap("owners", "m", '["x"]', '["b"]')
        assert not await last.kv_swap("owners", "m", None, None)
        assert await last.kv_swap("owners", "m", '["a"]', '["a", "b"]')
        assert await first.kv_get("owners", "m") == '["a", "b"]'
        assert not await first.kv_swap("owners", "m", '["a"]', None)
        assert await first.kv_swap("owners", "m", '["a", "b"]', None)
        assert await first.kv_get("owners", "m") is None
        won = await asyncio.gather(*(s.kv_swap("owners", f"r{i}", None, f"v{n}") for i in range(10) for n, s in enumerate(stores)))
        assert sum(won) == 10, won  # one writer per key
        seen = await first.kv_get("owners", "r0")
        won = await asyncio.gather(*(s.kv_swap("owners", "r0", seen, f"w{n}") for n, s in enumerate(stores) for _ in range(3)))
        assert sum(won) == 1, won
    finally:
        for s in stores:
            await s.close()


# -- retention and erasure: what `podium memory prune` and `podium forget` do through the store ------


async def test_finished_run_ids_lists_finished_runs_before_a_time(store):
    await store.create_run(_run("late", status=RunStatus.COMPLETED, finished_at=300.0))
    await store.create_run(_run("done", status=RunStatus.COMPLETED, finished_at=100.0))
    await store.create_run(_run("failed", status=RunStatus.FAILED, finished_at=200.0))
    await store.create_run(_run("cancelled", status=RunStatus.CANCELLED, finished_at=150.0))
    await store.create_run(_run("no-time", status=RunStatus.COMPLETED))
    for status in (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING):  # never listed
        await store.create_run(_run(f"open-{status.value}", status=status, finished_at=50.0))
    assert await store.finished_run_ids(before=250.0) == ["done", "cancelled", "failed"]
    assert await store.finished_run_ids(before=200.0) == ["done", "cancelled"]
    assert await store.finished_run_ids(before=100.0) == []
    assert await store.finished_run_ids(before=1e12) == ["done", "cancelled", "failed", "late"]


async def test_delete_runs_takes_their_events_and_signals_and_spares_unfinished_runs(store):
    now = time.time()
    await store.create_run(
        _run("old", status=RunStatus.COMPLETED, finished_at=1.0), [_ev("old", 1), _ev("old", 2)]
    )
    await store.send_signal("old", "approve", '{"ok":true}', now=now)
    await store.create_run(_run("busy", owner="me", lease_expires_at=now + 60), [_ev("busy", 1)])
    await store.send_signal("busy", "approve", None, now=now)
    assert await store.delete_runs(["old", "busy", "ghost", "old"]) == ["old"]
    assert await store.get_run("old") is None
    assert await store.load_events("old") == [] and await store.get_signals("old") == {}
    assert (await store.get_run("busy")).owner == "me"
    assert [e.seq for e in await store.load_events("busy")] == [1]
    assert await store.get_signals("busy") == {"approve": None}
    assert await store.delete_runs([]) == []
    # Nothing of the deleted run is left behind: its id starts afresh.
    assert await store.create_run(_run("old"), [_ev("old", 1)])
    assert await store.send_signal("old", "approve", '"again"', now=now)
    assert await store.get_signals("old") == {"approve": '"again"'}


async def test_delete_runs_in_bulk(store):
    ids = [f"r{i:04d}" for i in range(1200)]  # more than SQLite takes in one statement's parameters
    for rid in ids:
        await store.create_run(_run(rid, status=RunStatus.FAILED, finished_at=5.0), [_ev(rid, 1)])
    assert await store.finished_run_ids(before=10.0) == ids
    assert await store.delete_runs(ids) == ids
    assert await store.list_runs(limit=10) == [] and await store.finished_run_ids(before=10.0) == []


def _ask(rid: str, seq: int, name: str, *, ts: float = 0.0, approval: object = True, step: str = "s") -> Event:
    """The ``step_waiting`` event of ``ctx.approval()`` (``approval=None``: a plain signal wait)."""
    data: dict = {"signal": name, "deadline": None}
    if approval is not None:
        data["approval"] = {"title": f"approve {name}", "payload": {"n": seq}, "role": None}
    return Event(
        run_id=rid, seq=seq, type="step_waiting", ts=ts or time.time(), step=f"{step}/signal:{name}",
        attempt=1, data=json.dumps(data),
    )  # fmt: skip


async def _inbox(store, **kw) -> list[tuple[str, str]]:
    return [(a.event.run_id, a.name) for a in await store.open_approvals(**kw)]


async def test_open_approvals_follow_requests_signals_timeouts_and_run_ends(store):
    await store.create_run(_run("r1"), [_ev("r1", 1, "run_started")])
    await store.append([_ask("r1", 2, "approval:a", ts=10.0)])
    await store.append_one("r1", 3, "step_waiting", 11.0, "t/signal:__timer__:1", 0, None, 1, '{"signal":"__timer__:1","deadline":99}')
    await store.append_one("r1", 4, "step_waiting", 12.0, "u/signal:go", 0, None, 1, '{"signal":"go","deadline":null}')
    [a] = await store.open_approvals()
    assert (a.workflow, a.name, a.event.run_id, a.event.seq, a.event.step, a.event.ts) == ("wf", "approval:a", "r1", 2, "s/signal:approval:a", 10.0)
    assert json.loads(a.event.data)["approval"]["title"] == "approve approval:a"
    # the hot path (one event, no run update) opens a request too, and a signal closes it
    await store.create_run(_run("r2", workflow="other"), [_ev("r2", 1, "run_started")])
    ask = _ask("r2", 2, "approval:b", ts=20.0)
    await store.append_one("r2", 2, ask.type, ask.ts, ask.step, 0, None, 1, ask.data)
    await store.append([_ev("r2", 3, "run_waiting")], {"status": RunStatus.WAITING})
    assert await _inbox(store) == [("r1", "approval:a"), ("r2", "approval:b")]
    assert await _inbox(store, workflow="other") == [("r2", "approval:b")]
    assert await _inbox(store, run_id="r1") == [("r1", "approval:a")]
    assert await _inbox(store, run_id="r1", workflow="other") == []
    assert await store.send_signal("r2", "approval:b", '{"approved":true}', now=time.time())
    assert await _inbox(store) == [("r1", "approval:a")]
    # a wait that timed out is no longer a request
    await store.create_run(_run("r3"), [_ev("r3", 1, "run_started"), _ask("r3", 2, "approval:c", ts=30.0)])
    assert await _inbox(store, run_id="r3") == [("r3", "approval:c")]
    done = '{"started":1,"signal":"approval:c","timed_out":true,"output":null}'
    await store.append_one("r3", 3, "step_completed", time.time(), "s/signal:approval:c", 0, None, 1, done)
    assert await _inbox(store, run_id="r3") == []
    # a run that ends (cancelled while it waited) takes its requests with it
    await store.append([_ask("r1", 5, "approval:d", ts=13.0)])
    await store.append([_ev("r1", 6, "run_cancelled")], {"status": RunStatus.CANCELLED, "finished_at": 1.0})
    assert await _inbox(store) == []
    # a decision before its request was asked is refused (nothing open to decide); one copied from
    # another store as it was is kept, and then there is nothing to decide
    await store.create_run(_run("r4"), [_ev("r4", 1, "run_started")])
    assert not await store.send_signal("r4", "approval:e", None, now=time.time())
    assert await store.get_signals("r4") == {}
    assert await store.send_signal("r4", "approval:e", None, now=time.time(), copied=True)
    await store.append([_ask("r4", 2, "approval:e")])
    assert await _inbox(store) == []
    # a run created with its log (a fork, a copied store): open if it is unfinished
    await store.create_run(_run("r5"), [_ev("r5", 1, "run_started"), _ask("r5", 2, "approval:f", ts=50.0)])
    await store.create_run(
        _run("r6", status=RunStatus.COMPLETED), [_ev("r6", 1, "run_started"), _ask("r6", 2, "approval:g")]
    )
    assert await _inbox(store) == [("r5", "approval:f")]
    # the request is read from the log as it is now (a later erasure shows), and goes with the run
    await store.redact_payloads(["approve approval:f"], "[erased]")
    assert json.loads((await store.open_approvals())[0].event.data)["approval"]["title"] == "[erased]"
    await store.append([_ev("r5", 3, "run_failed")], {"status": RunStatus.FAILED, "finished_at": 2.0})
    assert await store.delete_runs(["r5", "r6"]) == ["r5", "r6"]
    assert await store.open_approvals() == []


async def test_open_approvals_page_by_cursor_sees_every_request_once(store):
    asked = []
    for i in range(7):
        rid = f"p{i}"
        names = [f"approval:{k}" for k in ("x", "y", "z")[: 1 + i % 3]]
        # several requests asked at the same instant: the run id and name order them
        events = [_ev(rid, 1, "run_started")] + [_ask(rid, 2 + j, n, ts=100.0 + i // 2) for j, n in enumerate(names)]
        await store.create_run(_run(rid), events)
        asked += [(100.0 + i // 2, rid, n) for n in names]
    pages, after = [], None
    while page := await store.open_approvals(after=after, limit=4):
        pages.append(page)
        last = page[-1]
        after = (last.event.ts, last.event.run_id, last.name)
    seen = [(a.event.ts, a.event.run_id, a.name) for p in pages for a in p]
    assert seen == sorted(asked) and len(pages) == -(-len(asked) // 4)
    assert [len(p) for p in pages[:-1]] == [4] * (len(pages) - 1)


async def test_a_store_migrated_to_the_inbox_index_lists_the_requests_already_open(store_url):
    if store_url.startswith("memory://"):
        pytest.skip("the memory store has no schema to migrate")
    old = open_store(store_url)
    old.auto_migrate = False
    await old.open()
    try:
        await old.migrate(6)  # the schema before the approvals index
        await old.create_run(_run("open"), [_ev("open", 1, "run_started"), _ask("open", 2, "approval:a", ts=5.0)])
        await old.append([_ask("open", 3, "approval:b", ts=6.0, step="t")])
        await old.create_run(_run("answered"), [_ev("answered", 1, "run_started"), _ask("answered", 2, "approval:a")])
        await old.send_signal("answered", "approval:a", None, now=time.time())
        timed_out = '{"started":1,"signal":"approval:a","timed_out":true,"output":null}'
        await old.create_run(
            _run("late"),
            [_ev("late", 1, "run_started"), _ask("late", 2, "approval:a"),
             _ev("late", 3, step="s/signal:approval:a", data=timed_out)],
        )  # fmt: skip
        await old.create_run(_run("ended", status=RunStatus.FAILED), [_ev("ended", 1, "run_started"), _ask("ended", 2, "approval:a")])
        await old.create_run(_run("timer"), [_ev("timer", 1, "run_started"), _ask("timer", 2, "__timer__:1", approval=None)])
    finally:
        await old.close()
    async with open_store(store_url) as new:
        assert await new.schema_version() >= 7
        found = await new.open_approvals()
        assert [(a.event.run_id, a.name, a.event.seq, a.event.ts) for a in found] == [
            ("open", "approval:a", 2, 5.0),
            ("open", "approval:b", 3, 6.0),
        ]
        await new.send_signal("open", "approval:a", None, now=time.time())  # kept from now on
        assert await _inbox(new) == [("open", "approval:b")]


async def test_an_approval_asked_or_timed_out_through_the_one_event_path_opens_and_closes_its_request(store):
    """The engine writes a step's wait and its timed-out end through ``append_one``: the inbox
    follows it like any other write (on SQLite the store keeps it, in the same transaction)."""
    await store.create_run(_run("r1"), [_ev("r1", 1, "run_started")])
    ask = _ask("r1", 2, "approval:x", ts=7.0)
    await store.append_one("r1", 2, ask.type, ask.ts, ask.step, 0, None, 1, ask.data)
    assert await _inbox(store) == [("r1", "approval:x")]
    done = '{"started":1,"signal":"approval:x","timed_out":true,"output":null}'
    await store.append_one("r1", 3, "step_completed", 8.0, "s/signal:approval:x", 0, None, 1, done)
    assert await _inbox(store) == []
    bad = '{"signal": 5, "approval": {}}'  # not a request: no row, no error
    await store.append_one("r1", 4, "step_waiting", 9.0, "t/signal:5", 0, None, 1, bad)
    await store.append_one("r1", 5, "step_waiting", 9.0, "t/signal:y", 0, None, 1, '{"approval": not json')
    assert await _inbox(store) == [] and [e.seq for e in await store.load_events("r1")] == [1, 2, 3, 4, 5]


async def test_append_at_once_writes_now_or_says_to_use_append_one(store):
    """``append_at_once`` either writes the event now (True) or writes nothing (False: the caller
    goes through ``append_one``); a seq already written is a LeaseLost either way."""
    await store.create_run(_run("r1"), [_ev("r1", 1, "run_started")])
    if store.append_at_once("r1", 2, "step_completed", 1.0, "s", 0, None, 1, '{"output":null}'):
        with pytest.raises(LeaseLost):
            store.append_at_once("r1", 2, "step_completed", 1.0, "s", 0, None, 1, '{"output":null}')
    else:
        assert [e.seq for e in await store.load_events("r1")] == [1]
        await store.append_one("r1", 2, "step_completed", 1.0, "s", 0, None, 1, '{"output":null}')
    assert [(e.seq, e.step) for e in await store.load_events("r1")] == [(1, None), (2, "s")]
    with pytest.raises(LeaseLost):
        await store.append_one("r1", 2, "step_completed", 1.0, "s", 0, None, 1, '{"output":null}')


async def test_a_decision_and_its_waits_timeout_never_both_count(store):
    """Before a wait for an approval times out, its request is closed unless its decision is stored:
    the decision either wins (close_request answers False, the waiter takes it) or is refused
    (send_signal answers False once the request is closed); never stored and ignored. A decision
    names the request it decides (``request``: its asking event's seq): a later request of the
    same name is not decided by it."""
    # the decision first: the request cannot be closed, the waiter takes the decision
    await store.create_run(_run("a"), [_ev("a", 1, "run_started"), _ask("a", 2, "approval:x")])
    assert await store.send_signal("a", "approval:x", '{"approved":true}', now=time.time(), request=2)
    assert not await store.close_request("a", "approval:x")
    # the close first: the decision is refused, and stored nowhere
    await store.create_run(_run("b"), [_ev("b", 1, "run_started"), _ask("b", 2, "approval:x")])
    assert await store.close_request("b", "approval:x")
    assert await _inbox(store, run_id="b") == []
    assert not await store.send_signal("b", "approval:x", '{"approved":true}', now=time.time())
    assert await store.get_signals("b") == {}
    # a decision read on an earlier request of that name does not decide the one open now
    await store.create_run(_run("c"), [_ev("c", 1, "run_started"), _ask("c", 2, "approval:x")])
    assert await store.close_request("c", "approval:x")
    done = '{"started":1,"signal":"approval:x","timed_out":true,"output":null}'
    await store.append([Event(run_id="c", seq=3, type="step_completed", ts=2.0, step="s/signal:approval:x", attempt=1, data=done)])
    await store.append([_ask("c", 4, "approval:x")])  # asked again (a loop), same name
    assert not await store.send_signal("c", "approval:x", '{"approved":true}', now=time.time(), request=2)
    assert await store.send_signal("c", "approval:x", '{"approved":true}', now=time.time(), request=4)
    # a plain signal is not a request: closing does nothing to it
    await store.create_run(_run("d"), [_ev("d", 1, "run_started"), _ask("d", 2, "go", approval=None)])
    assert await store.close_request("d", "go")
    assert await store.send_signal("d", "go", "1", now=time.time())
