"""Attacks on the audit numbers drawn ahead on PostgreSQL (podium/storage/_pg_numbers.py, helper pgrev,
twelfth session): the guard ``pg_sequence_last_value('audit_seq') = <the store's last draw>`` trusts
the sequence never to hand out a number twice. A server that loses the tail of its WAL (a crash with
``synchronous_commit`` off, a failover to an asynchronous standby; simulated here by ``setval``)
hands out again the numbers a surviving process still keeps: once the others' draws bring the
sequence back to exactly that process's last number, its guard holds while the log already has
entries numbered among, or above, the numbers it keeps (docs/status.md, "Review of h-pgcost")."""

from __future__ import annotations

import time
from typing import Any

import pytest
from store_helpers import new_run, started

psycopg = pytest.importorskip("psycopg")

from podium import RunStatus, open_store  # noqa: E402
from podium.records import AuditEntry, Event  # noqa: E402


def _sql(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def _entry(action: str, rid: str) -> AuditEntry:
    return AuditEntry(ts=time.time(), actor="engine", action=action, target=rid, data="{}")


async def _start(store: Any, rid: str) -> bool:
    return bool(
        await store.create_run(
            new_run(rid, created=time.time()), [started(rid, 1)], audit=_entry("run.start", rid)
        )
    )


async def _end(store: Any, rid: str) -> None:
    done = [Event(run_id=rid, seq=2, type="run_completed", ts=time.time(), data="1")]
    await store.append(done, {"status": RunStatus.COMPLETED}, audit=_entry("run.end", rid))


def _kept(store: Any) -> tuple[int, int]:
    """(the next number the store keeps, the last number of its draw)."""
    taken = store._numbers().take()
    assert taken is not None, "the store keeps no numbers drawn ahead"
    store._numbers()._kept.appendleft(taken[0])  # put it back: only looked at
    return taken


@pytest.mark.parametrize("write", ["end", "start"])
@pytest.mark.parametrize("collide", [True, False])
async def test_a_sequence_set_back_below_the_numbers_kept_does_not_fool_the_guard(
    pg_url, tmp_path, collide, write
):
    """A keeps numbers k..top; the sequence is set back below k (the WAL of A's draw lost); another
    writer B draws again and commits an entry numbered k (``collide``) or above k, and further draws
    bring the sequence back to exactly top. A's next run end must still land, after B's entry in the
    log (a live reader paging by ``seq > after`` would skip an entry numbered below one it has read),
    not be refused as if another engine owned the run (a duplicate number) nor numbered below B's."""
    key = str(tmp_path / "audit.key")
    a, b = open_store(pg_url), open_store(pg_url)
    a.audit_key = b.audit_key = key
    a.audit_anchor_interval = b.audit_anchor_interval = 3600.0  # no anchor (and its draw) meanwhile
    async with a, b:
        await b.append_audit(_entry("config.set", "b"))  # B's chain registered (its anchor drew)
        assert await _start(a, "r1")
        await _end(a, "r1")  # the usual way: draws numbers ahead
        assert await _start(a, "r2")  # with one of them
        k, top = _kept(a)
        _sql(pg_url, "SELECT setval('audit_seq', %s)", (k - 1 if collide else k,))  # the draw's WAL lost
        other = await b.append_audit(_entry("config.set", "x"))  # B's entry: number k (or k + 1)
        assert other.seq == (k if collide else k + 1)
        _sql(pg_url, "SELECT nextval('audit_seq') FROM generate_series(1, %s)", (top - other.seq,))
        assert _sql(pg_url, "SELECT pg_sequence_last_value('audit_seq')") == [(top,)]
        # the guard holds: no number drawn since A's draw, as far as the sequence tells
        if write == "end":
            await _end(a, "r2")
            assert (await a.get_run("r2")).status is RunStatus.COMPLETED
        else:
            assert await _start(a, "r3")
        action, rid = ("run.end", "r2") if write == "end" else ("run.start", "r3")
        [(seq,)] = _sql(pg_url, "SELECT seq FROM audit WHERE action = %s AND target = %s", (action, rid))
        assert seq > other.seq, f"{action} of {rid} numbered {seq}, below {other.seq} committed before it"


@pytest.mark.parametrize("write", ["end", "start"])
async def test_a_number_kept_that_another_writer_is_writing_sends_the_write_the_usual_way(
    pg_url, tmp_path, write
):
    """As above, but B's entry numbered k is not committed yet when A's end (or start) looks: A's
    insert waits for it and then meets its number. A's write must go the usual way (a fresh number),
    not be refused as if another engine owned the run."""
    import asyncio

    key = str(tmp_path / "audit.key")
    a = open_store(pg_url)
    a.audit_key = key
    a.audit_anchor_interval = 3600.0
    async with a:
        assert await _start(a, "r1")
        await _end(a, "r1")
        assert await _start(a, "r2")
        k, top = _kept(a)
        _sql(pg_url, "SELECT setval('audit_seq', %s)", (k - 1,))
        async with await psycopg.AsyncConnection.connect(pg_url) as b:  # B, in a transaction
            cur = await b.execute("SELECT nextval('audit_seq')")
            assert (await cur.fetchone())[0] == k
            await b.execute(
                "INSERT INTO audit (seq, ts, actor, action, target, data, prev_hash, hash, chain, cseq) "
                "VALUES (%s, 0, 'b', 'config.set', 'x', '{}', 'p', 'h', 'bchain', 1)",
                (k,),
            )
            _sql(pg_url, "SELECT nextval('audit_seq') FROM generate_series(1, %s)", (top - k,))
            end = asyncio.ensure_future(_end(a, "r2") if write == "end" else _start(a, "r3"))
            for _ in range(2000):  # until A's insert waits for B's row
                waiting = _sql(pg_url, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                               "AND datname = current_database()")  # fmt: skip
                if waiting[0][0] or end.done():
                    break
                await asyncio.sleep(0.005)
            assert waiting[0][0], "A's write did not wait for B's entry"
            await b.commit()
        await end
        if write == "end":
            assert (await a.get_run("r2")).status is RunStatus.COMPLETED
        else:
            assert end.result() is True
        action, rid = ("run.end", "r2") if write == "end" else ("run.start", "r3")
        [(seq,)] = _sql(pg_url, "SELECT seq FROM audit WHERE action = %s AND target = %s", (action, rid))
        assert seq > top


def test_the_guard_reads_the_end_of_the_audit_index_in_a_generic_plan(pg_url):
    """The guard's look at the log (no entry at or above the number written) is one probe of the
    primary key's end, also in the generic plan psycopg's prepared statements get after a few runs
    (``seq >= $1`` in an EXISTS is planned there as a scan of the whole audit table)."""
    import asyncio

    from podium.storage._pg_numbers import _GUARD

    asyncio.run(_open_close(pg_url))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO audit (seq, ts, actor, action, target, data, prev_hash, hash) "
                     "SELECT g, 0, 'a', 'x', 't', '{}', 'p', 'h' FROM generate_series(1, 20000) g")  # fmt: skip
        conn.execute("ANALYZE audit")
        conn.execute("SET plan_cache_mode = force_generic_plan")
        guard = _GUARD.replace("%s", "$1", 1).replace("%s", "$2", 1)
        conn.execute(f"PREPARE guard(bigint, bigint) AS WITH {guard} SELECT ok FROM g")
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN EXECUTE guard(1, 20001)"))
    assert "Seq Scan" not in plan and "audit_pkey" in plan, plan


async def _open_close(url: str) -> None:
    async with open_store(url):
        pass


async def test_two_stores_writing_at_once_number_every_entry_after_those_committed_before_its_write(
    pg_url, tmp_path, monkeypatch
):
    """Two stores (two pools, as two processes) start and end runs at once, lone and in groups, while
    each draws numbers ahead: whenever a write returned before another was asked for, the later one's
    entry has the larger number (a reader paging by ``seq`` never has to look back for it), every
    number is used once, and each chain ascends in the log."""
    import asyncio

    from podium.storage import _pg_numbers

    monkeypatch.setattr(_pg_numbers, "BACKOFF", 0.0)  # both draw ahead again at once after a failed guard
    guarded = {"held": 0}
    numbered = _pg_numbers.PgNumbered._numbered

    async def counted(self: Any, *args: Any) -> bool:
        held = await numbered(self, *args)
        guarded["held"] += held
        return held

    monkeypatch.setattr(_pg_numbers.PgNumbered, "_numbered", counted)
    key = str(tmp_path / "audit.key")
    stores = [open_store(pg_url), open_store(pg_url)]
    done: list[tuple[float, float, str, str]] = []  # (asked, returned, action, run)

    async def one(store: Any, rid: str) -> None:
        t0 = time.monotonic()
        assert await _start(store, rid)
        t1 = time.monotonic()
        done.append((t0, t1, "run.start", rid))
        await _end(store, rid)
        done.append((t1, time.monotonic(), "run.end", rid))

    for s in stores:
        s.audit_key = key
    async with stores[0], stores[1]:
        for i in range(12):
            if i % 3 == 2:  # both at once, several runs each (groups)
                await asyncio.gather(*(one(stores[j % 2], f"g{i}-{j}") for j in range(6)))
            else:  # one store at a time, runs one after another (the fast way, then the guard fails)
                for j in range(4):
                    await one(stores[(i + j // 2) % 2], f"l{i}-{j}")
    assert guarded["held"] >= 4  # ends written the fast way
    rows = _sql(pg_url, "SELECT action, target, seq, chain, cseq FROM audit ORDER BY seq")
    seqs = {(action, target): seq for action, target, seq, _, _ in rows if action in ("run.start", "run.end")}
    assert len(seqs) == len(done)
    for _, returned, action, rid in done:
        for asked, _, action2, rid2 in done:
            if returned < asked:
                assert seqs[(action, rid)] < seqs[(action2, rid2)], (action, rid, action2, rid2)
    by_chain: dict[str, list[int]] = {}
    for _, _, _, chain, cseq in rows:
        by_chain.setdefault(chain, []).append(cseq)
    assert all(c == sorted(c) for c in by_chain.values())


async def test_a_guarded_end_refused_leaves_the_numbers_and_the_chain_right(pg_url, tmp_path):
    """A guarded end refused by the database (another engine wrote the run's next event: LeaseLost)
    writes nothing; the numbers A keeps are not used twice, the next start and end take the
    refused entry's place in the chain, and the log verifies."""
    from podium.errors import LeaseLost
    from podium.governance.audit import check_chain

    a = open_store(pg_url)
    a.audit_key = str(tmp_path / "audit.key")
    async with a:
        assert await _start(a, "r1")
        await _end(a, "r1")
        assert await _start(a, "r2")
        k, _ = _kept(a)
        _sql(pg_url, "INSERT INTO events (run_id, seq, type, ts) VALUES ('r2', 2, 'step_completed', 0)")
        with pytest.raises(LeaseLost):
            await _end(a, "r2")
        assert _kept(a)[0] == k + 1  # k is a gap, never used again
        assert await _start(a, "r3")
        await _end(a, "r3")
        entries = [e for e in await a.list_audit() if e.action in ("run.start", "run.end")]
        assert [(e.action, e.target) for e in entries][-2:] == [("run.start", "r3"), ("run.end", "r3")]
        assert [e.cseq for e in entries] == list(range(entries[0].cseq, entries[0].cseq + 5))
        assert entries[-2].seq > k
        await a.anchor_audit()
        assert check_chain(await a.read_audit(), a.audit_keys.all()).problem is None
