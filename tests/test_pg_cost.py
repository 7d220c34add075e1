"""What a run costs the PostgreSQL store's client (bench/pg_runs.py measures it): one statement for a
lone run's start, step and end, with audit numbers drawn ahead behind a guard (the log's order still
follows the order of the writes, with two writers too), no array parameters on a run's path, the
numbers of a group's new runs in chain order, and schema 9 (a partial index of child runs) with the
upgrade of a schema-8 store (docs/status.md, "PostgreSQL per-run cost (twelfth session)")."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from store_helpers import new_run, started

psycopg = pytest.importorskip("psycopg")

from podium import Client, RunStatus, Workflow, open_store  # noqa: E402
from podium.governance.audit import check_chain  # noqa: E402
from podium.records import AuditEntry, Event  # noqa: E402


def _two_steps() -> Workflow:
    wf = Workflow("two")

    @wf.step
    async def first() -> int:
        return 1

    @wf.step
    async def second(first: int) -> int:
        return first + 1

    return wf


class _Sent:
    """The statements psycopg sends (each parameter set of an executemany is one), with their parameters."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.statements: list[tuple[str, Any]] = []
        execute, many = psycopg.AsyncCursor.execute, psycopg.AsyncCursor.executemany
        sent = self.statements

        async def counted(cur: Any, query: Any, params: Any = None, **kw: Any) -> Any:
            sent.append((str(query), params))
            return await execute(cur, query, params, **kw)

        async def counted_many(cur: Any, query: Any, params_seq: Any, **kw: Any) -> Any:
            params_seq = list(params_seq)
            sent.extend((str(query), p) for p in params_seq)
            return await many(cur, query, params_seq, **kw)

        monkeypatch.setattr(psycopg.AsyncCursor, "execute", counted)
        monkeypatch.setattr(psycopg.AsyncCursor, "executemany", counted_many)


async def test_a_two_step_run_sends_three_statements_and_no_array(pg_url, tmp_path, monkeypatch):
    """A lone two-step run: its creation (its row, its event and its signed start entry), its first
    step, its end (its last events, its signed end entry, its final state): one statement each, the
    entries numbered ahead (podium/storage/_pg_numbers.py), and no array parameter (arrays cost the
    client ~10 µs of CPU each to adapt). Before: eight statements in five round trips (each entry's
    number drawn first) and 18 arrays per run (its events as unnest columns)."""
    wf = _two_steps()
    async with Client(pg_url, workflows=[wf], audit_key=tmp_path / "audit.key") as c:
        for _ in range(3):  # the chain registered (its first anchor), the workflow known
            assert await c.run(wf) == 2
        sent = _Sent(monkeypatch)
        for _ in range(8):
            assert await c.run(wf) == 2
        monkeypatch.undo()
        arrays = [(q, p) for q, p in sent.statements if any(isinstance(v, list) for v in (p or ()))]
        assert arrays == []
        per_run = [q for q, _ in sent.statements if "'anchors'" not in q and "pg_advisory" not in q]
        # 3 per run, and at most a draw of numbers ahead and an anchor's statements besides
        assert len(per_run) <= 8 * 3 + 4, per_run  # 64 before
        assert sum("pg_sequence_last_value" in q for q in per_run) >= 12
        assert (await c.verify_audit())[1] is None


async def test_a_group_of_mixed_new_runs_numbers_its_entries_in_chain_order(pg_url, tmp_path):
    """Runs created together with none, one or several events (three statements in the group), one of
    them already existing: each new run gets its start entry, numbered in chain order (the numbers
    are drawn statement by statement, then given out in order), and the log verifies."""
    store = open_store(pg_url)
    store.audit_key = str(tmp_path / "audit.key")
    async with store:
        assert await store.create_run(new_run("old", created=1.0), [started("old", 1)])
        now = time.time()

        def entry(rid: str) -> AuditEntry:
            return AuditEntry(ts=now, actor="engine", action="run.start", target=rid, data="{}")

        several = [started("many", 1), Event(run_id="many", seq=2, type="step_completed", ts=now, step="a", data="1"),
                   Event(run_id="many", seq=3, type="step_completed", ts=now, step="b", data="2")]  # fmt: skip
        items = [
            (new_run("one-a", created=2.0), [started("one-a", 1)], entry("one-a")),
            (new_run("none", created=3.0), [], entry("none")),
            (new_run("old", created=1.0), [started("old", 1)], entry("old")),  # exists: no entry
            (new_run("many", created=4.0), several, entry("many")),
            (new_run("one-b", created=5.0), [started("one-b", 1)], entry("one-b")),
            (new_run("quiet", created=6.0), [started("quiet", 1)], None),  # no entry asked
        ]
        assert await store.create_runs(items) == [True, True, False, True, True, True]
        assert [e.seq for e in await store.load_events("many")] == [1, 2, 3]
        assert await store.load_events("none") == []
        starts = [e for e in await store.list_audit() if e.action == "run.start"]
        assert [e.target for e in starts] == ["one-a", "none", "many", "one-b"]  # chain order = items order
        assert [e.seq for e in starts] == sorted(e.seq for e in starts)
        assert [e.cseq for e in starts] == sorted(e.cseq for e in starts)
        await store.anchor_audit()
        # the chains alone (the runs made here without entries, "old" and "quiet", are not the point)
        assert check_chain(await store.read_audit(), store.audit_keys.all()).problem is None


def _sql(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


async def test_schema_9_indexes_child_runs_only_and_a_schema_8_store_upgrades(pg_url):
    """Schema 9: ``runs_parent`` holds the runs that have a parent (a root run, nearly every run,
    wrote a NULL key to it at its insert and at every update that moved its row). A store made at
    schema 8, with root and child runs, upgrades; its children are still listed by parent, from
    the index."""
    from podium.storage.postgres import PostgresStore

    old = PostgresStore(pg_url, auto_migrate=False)
    await old.open()
    try:
        assert await old.migrate(target=8) == [1, 2, 3, 4, 5, 6, 7, 8]
        assert await old.create_run(new_run("root", created=1.0, status=RunStatus.COMPLETED))
        for i in range(3):
            child = new_run(f"child{i}", created=2.0 + i, status=RunStatus.COMPLETED, parent_run_id="root")
            assert await old.create_run(child)
        assert "WHERE" not in _sql(pg_url, "SELECT indexdef FROM pg_indexes WHERE indexname = 'runs_parent'")[0][0]
    finally:
        await old.close()
    async with PostgresStore(pg_url) as store:  # opening migrates (to the latest schema, 9 or later)
        from podium.storage import postgres as pg

        assert await store.schema_version() == pg.MIGRATIONS[-1][0] >= 9
        [(definition,)] = _sql(pg_url, "SELECT indexdef FROM pg_indexes WHERE indexname = 'runs_parent'")
        assert definition.endswith("WHERE (parent_run_id IS NOT NULL)")
        children = await store.list_runs(parent_run_id="root")
        assert [r.id for r in children] == ["child2", "child1", "child0"]
        assert await store.list_runs(parent_run_id="child0") == []
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")  # a few rows: make the planner show what it can use
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN SELECT id FROM runs WHERE parent_run_id = 'root'"))
    assert "runs_parent" in plan, plan
    assert _sql(pg_url, "SELECT count(*) FROM runs WHERE parent_run_id IS NULL") == [(1,)]


def _entries(url: str) -> dict[tuple[str, str], int]:
    """(action, run) -> seq of the run.start and run.end entries."""
    rows = _sql(url, "SELECT action, target, seq FROM audit WHERE action IN ('run.start', 'run.end')")
    out: dict[tuple[str, str], int] = {}
    for action, target, seq in rows:
        assert (action, target) not in out, f"two {action} entries for run {target}"
        out[(action, target)] = seq
    return out


async def test_two_writers_taking_turns_keep_the_log_in_the_order_of_the_writes(pg_url, tmp_path):
    """Two engines on one store, runs one after another, alternating: each draws numbers ahead, and
    the other's draws make its guard fail (it then draws anew). Every run has one start and one end
    entry; a run started after another ended has the larger numbers (the order of the log follows
    the order of the writes, as when every number was drawn just before its write); the log verifies."""
    wf = _two_steps()
    key = tmp_path / "audit.key"
    order: list[str] = []
    async with Client(pg_url, workflows=[wf], audit_key=key) as a, Client(pg_url, workflows=[wf], audit_key=key) as b:
        for i in range(24):
            c = a if (i // 3) % 2 else b  # three runs each in turn: both the fast way and the usual way
            handle = await c.start(wf)
            assert await handle.result() == 2
            order.append(handle.id)
        assert (await a.verify_audit())[1] is None
    seqs = _entries(pg_url)
    for earlier, later in itertools.pairwise(order):
        assert seqs[("run.start", earlier)] < seqs[("run.end", earlier)] < seqs[("run.start", later)]


async def test_a_number_drawn_elsewhere_makes_the_guard_fail_and_the_write_go_the_usual_way(
    pg_url, tmp_path, monkeypatch
):
    """The store holds numbers drawn ahead; another process draws one (as its next entry would):
    the store's next end, and later its next start, are written with numbers above it, not with
    those it kept; a start of a run that exists writes no entry and leaves no gap in the chain."""
    from podium.storage import _pg_numbers

    monkeypatch.setattr(_pg_numbers, "BACKOFF", 0.0)  # draw ahead again at once after a failed guard
    store = open_store(pg_url)
    store.audit_key = str(tmp_path / "audit.key")
    async with store:
        now = time.time()

        async def start(rid: str) -> bool:
            entry = AuditEntry(ts=now, actor="engine", action="run.start", target=rid, data="{}")
            return await store.create_run(new_run(rid, created=now), [started(rid, 1)], audit=entry)

        async def end(rid: str) -> None:
            entry = AuditEntry(ts=now, actor="engine", action="run.end", target=rid, data="{}")
            done = [Event(run_id=rid, seq=2, type="run_completed", ts=now, data="1")]
            await store.append(done, {"status": RunStatus.COMPLETED}, audit=entry)

        def elsewhere() -> int:
            return _sql(pg_url, "SELECT nextval('audit_seq')")[0][0]

        assert await start("r1")
        await end("r1")  # the usual way: draws numbers ahead
        assert await start("r2")  # with one of them
        assert not await start("r2")  # exists: no entry, the number a gap
        first = elsewhere()
        await end("r2")  # its guard fails: the usual way
        assert await start("r3")
        await end("r3")  # draws ahead again
        assert await start("r4")
        second = elsewhere()
        assert await start("r5")  # its guard fails
        seqs = _entries(pg_url)
        assert seqs[("run.start", "r2")] < first < seqs[("run.end", "r2")]
        assert seqs[("run.start", "r4")] < second < seqs[("run.start", "r5")]
        assert (await store.get_run("r2")).status is RunStatus.COMPLETED
        chain = [e for e in await store.list_audit() if e.action in ("run.start", "run.end")]
        assert [e.cseq for e in chain] == list(range(chain[0].cseq, chain[0].cseq + 8))  # no gap
        await store.anchor_audit()
        assert check_chain(await store.read_audit(), store.audit_keys.all()).problem is None


@pytest.fixture
def writer_role(pg_url: str):  # type: ignore[no-untyped-def]
    """A role that may write Podium's tables and draw audit numbers (UPDATE on the sequence) but
    not read the sequence (no USAGE, no SELECT): ``pg_sequence_last_value`` is refused to it."""
    import uuid

    name = f"podium_test_pgcost_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{name}" LOGIN')
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
        conn.execute(f'DROP OWNED BY "{name}"')
        conn.execute(f'DROP ROLE IF EXISTS "{name}"')


async def test_a_role_that_may_not_read_the_audit_sequence_writes_runs_the_usual_way(pg_url, writer_role, tmp_path):
    """The guard reads the sequence (USAGE or SELECT); a role that may only draw from it (UPDATE)
    has every guarded statement refused: its runs are written the usual way, whole and audited."""
    from urllib.parse import urlsplit, urlunsplit

    async with open_store(pg_url):  # the owner makes the schema
        pass
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{writer_role}"')
        conn.execute(f'REVOKE ALL ON SEQUENCE audit_seq FROM "{writer_role}"')
        conn.execute(f'GRANT UPDATE ON SEQUENCE audit_seq TO "{writer_role}"')
    parts = urlsplit(pg_url)
    url = urlunsplit(parts._replace(netloc=f"{writer_role}@{parts.hostname}:{parts.port or 5432}"))
    wf = _two_steps()
    async with Client(url, workflows=[wf], audit_key=tmp_path / "audit.key") as c:
        for _ in range(6):
            assert await c.run(wf) == 2
        assert c.store._numbers().on is False  # refused once, then not tried again
    async with Client(pg_url, workflows=[wf], audit_key=tmp_path / "audit.key") as c:
        assert (await c.verify_audit())[1] is None
    seqs = _entries(pg_url)
    assert len(seqs) == 12
