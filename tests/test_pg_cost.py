"""What a run costs the PostgreSQL store's client (bench/pg_runs.py measures it): statements per run,
no array parameters on a lone run's path, the audit numbers drawn in the creation's own statement,
and schema 9 (a partial index of child runs) with the upgrade of a schema-8 store."""

from __future__ import annotations

import asyncio
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


async def test_a_two_step_run_sends_seven_statements_and_no_array(pg_url, tmp_path, monkeypatch):
    """A lone two-step run: its creation (BEGIN, its row and event with its audit number, its signed
    entry, COMMIT), its first step, its end (the number, then one statement). Arrays cost the client
    ~10 µs of CPU each to adapt: a run's event rows go as scalar parameters. Before: eight statements
    (the number had a statement of its own) and 18 arrays per run (its events as unnest columns)."""
    wf = _two_steps()
    async with Client(pg_url, workflows=[wf], audit_key=tmp_path / "audit.key") as c:
        for _ in range(3):  # the chain registered (its first anchor), the workflow known
            assert await c.run(wf) == 2
        sent = _Sent(monkeypatch)
        for _ in range(5):
            assert await c.run(wf) == 2
            await asyncio.sleep(0)
        monkeypatch.undo()
        per_run = [q for q, _ in sent.statements if "pg_notify" not in q and "'anchors'" not in q]
        arrays = [(q, p) for q, p in sent.statements if any(isinstance(v, list) for v in (p or ()))]
        assert arrays == []
        assert len(per_run) <= 5 * 7, per_run[:14]
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
    async with PostgresStore(pg_url) as store:  # opening migrates
        assert await store.schema_version() == 9
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
