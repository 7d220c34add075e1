"""An attacker's and correctness review of the fourteenth session's changes (docs/status.md,
"Attacker's review of the fourteenth session's changes").

Each test is an attack or a property the changes could have broken: the SQLite group write (a
group's events in one statement, its audit entries in another), schema 14 (one trigger keeping the
approvals inbox, the governing index written with OR), the executor's shared empty defaults,
``cancel_requests``, a fresh store's first open, and the one JSON encoder of the audit entries.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from podium import Client, LeaseLost, NotFound, RunStatus, StoreError, open_store
from podium.records import AuditEntry, Event, RunRecord

# -- a fresh store's first open (storage/_identity.py) ------------------------------------------------


def _pg(url: str, *queries: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for q in queries:
            conn.execute(q.encode())


def _planted(url: str, rows: dict[tuple[str, str], str]) -> None:
    """A database with no store in it but a ``schema_migrations`` table, empty, whose trigger writes
    ``rows`` into the key-value table once the migrations of a first open have made it (an insert
    of a PL/pgSQL function is planned when it runs, not when the trigger is made)."""
    body = " ".join(
        "INSERT INTO kv (ns, key, value) VALUES ({}, {}, {}) ON CONFLICT (ns, key) DO UPDATE SET value = "
        "excluded.value;".format(*(_lit(v) for v in (ns, key, value)))
        for (ns, key), value in rows.items()
    )
    _pg(
        url,
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
        "applied_at DOUBLE PRECISION NOT NULL DEFAULT extract(epoch FROM now()))",
        f"CREATE FUNCTION planted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.version = 3 THEN {body} "
        "END IF; RETURN NEW; END $$",
        "CREATE TRIGGER planted AFTER INSERT ON schema_migrations FOR EACH ROW EXECUTE FUNCTION planted()",
    )


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def test_attack_a_planted_schema_cannot_give_a_new_store_the_id_of_another_store(pg_database: Any) -> None:
    """A database prepared before production's store is made in it (one whose user may create
    tables there), holding a trigger that writes staging's id (and staging's tokens) into the
    key-value table as the first open makes it: the open made the schema (migration 1), so it
    counted as fresh and skipped the look-up of the ids this machine pinned for other stores
    (d6faba3). Staging's admin token then held in production."""
    staging, prod = pg_database(), pg_database()
    async with Client(staging, recover=False) as c:
        await c.create_user("root", ["admin"])
        token = await c.create_token("root")
    import psycopg

    with psycopg.connect(staging, autocommit=True) as conn:
        got = conn.execute("SELECT ns, key, value FROM kv").fetchall()
    _planted(prod, {(ns, key): value for ns, key, value in got})
    with pytest.raises(StoreError, match="is the id of store"):
        async with Client(prod, token=token, recover=False) as c:
            await c.create_user("mallory", ["admin"])


class _Between(list):  # type: ignore[type-arg]
    """The migrations, with ``act`` run after the one that makes the key-value table has committed."""

    def __init__(self, items: list[tuple[int, str]], act: Any) -> None:
        super().__init__(items)
        self.act = act

    def __iter__(self) -> Any:
        for version, sql in list.__iter__(self):
            if version == 4:
                self.act()
            yield version, sql


async def test_attack_a_writer_between_the_migrations_of_a_first_open_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process writing the new database while the first open migrates it (each migration is
    a transaction of its own) sets staging's id in the row the open then reads."""
    from podium.storage import sqlite as sqlite_store

    staging = f"sqlite:///{tmp_path}/staging.db"
    async with Client(staging, recover=False):
        pass
    db = sqlite3.connect(tmp_path / "staging.db")
    stolen = db.execute("SELECT value FROM kv WHERE ns = 'podium.store'").fetchone()[0]
    db.close()

    def overwrite() -> None:
        other = sqlite3.connect(tmp_path / "prod.db")
        other.execute("UPDATE kv SET value = ? WHERE ns = 'podium.store'", (stolen,))
        other.commit()
        other.close()

    monkeypatch.setattr(sqlite_store, "MIGRATIONS", _Between(sqlite_store.MIGRATIONS, overwrite))
    with pytest.raises(StoreError, match="is the id of store"):
        async with Client(f"sqlite:///{tmp_path}/prod.db", recover=False):
            pass


async def test_a_new_store_reads_no_pin_of_another_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The look-up d6faba3 saved stays saved for a store whose id its open drew (an empty file too)."""
    from podium._auditkey import AuditKeys

    async with Client(f"sqlite:///{tmp_path}/a.db", recover=False):
        pass
    looked: list[str] = []
    real = AuditKeys.pinned_elsewhere
    monkeypatch.setattr(AuditKeys, "pinned_elsewhere", lambda self, sid: looked.append(sid) or real(self, sid))
    (tmp_path / "b.db").touch()
    async with Client(f"sqlite:///{tmp_path}/b.db", recover=False) as c:
        await c.create_user("root", ["admin"])
        assert await c.create_token("root")
    assert looked == []


# -- SQLite's group write: a group's events in one statement, its audit entries in another ------------


def _run(rid: str, status: RunStatus = RunStatus.RUNNING) -> RunRecord:
    return RunRecord(id=rid, workflow="wf", version="1", status=status, input="{}", created_at=time.time())


def _ev(rid: str, seq: int, type: str = "step_completed", **kw: Any) -> Event:
    return Event(run_id=rid, seq=seq, type=type, ts=time.time(), **kw)


def _ask(rid: str, seq: int, name: str) -> Event:
    data = {"signal": name, "deadline": None, "approval": {"title": name, "payload": None, "role": None}}
    return Event(
        run_id=rid, seq=seq, type="step_waiting", ts=time.time(), step=f"s/signal:{name}", attempt=1, data=json.dumps(data)
    )


def _entry(action: str, target: str) -> AuditEntry:
    return AuditEntry(ts=time.time(), actor="engine", action=action, target=target)


async def _inbox(store: Any) -> set[tuple[str, str]]:
    return {(a.event.run_id, a.name) for a in await store.open_approvals()}


async def _chain_holds(store: Any) -> list[int]:
    """The numbers of the store's audit entries other than anchors, once the whole log verifies."""
    from podium.governance.audit import check_chain

    await store.anchor_audit()
    keys = store.audit_keys
    heads, bad = keys.heads()
    check = check_chain(await store.read_audit(), keys.all(), heads)
    assert check.problem is None and not bad, (check.problem, bad)
    return [e.seq for e in await store.list_audit() if e.action != "audit.anchor"]


async def test_one_group_parks_ends_and_creates_runs_with_the_inbox_and_the_chain_right(tmp_path: Path) -> None:
    """One transaction (``_write_many``): a run created asking an approval, a run created again
    (it exists: nothing of it, not its entry), a run parking on a request, a run with an open request
    ending, a run's two writes one after the other (a request then its timeout), a new run created
    twice in the group (one event post repeated: the second is nothing). The inbox holds
    exactly the open requests of unfinished runs; the audit entries are numbered in item order with
    no gap and the chain verifies."""
    store: Any = open_store(f"sqlite:///{tmp_path}/p.db")
    await store.open()
    try:
        await store.create_run(_run("b"), [_ev("b", 1, "run_started"), _ask("b", 2, "approval:b")])
        await store.create_run(_run("a"), [_ev("a", 1, "run_started")])
        await store.create_run(_run("t"), [_ev("t", 1, "run_started")])
        assert await _inbox(store) == {("b", "approval:b")}
        before = await _chain_holds(store)
        timed_out = json.dumps({"started": 1, "signal": "approval:t", "timed_out": True, "output": None})
        out = await store._write_many([
            (_run("c"), [_ev("c", 1, "run_started"), _ask("c", 2, "approval:c")], _entry("run.start", "c")),
            (_run("b"), [_ev("b", 1, "run_started")], _entry("run.start", "b")),  # exists
            ([_ask("a", 2, "approval:a"), _ev("a", 3, "run_waiting")], {"status": RunStatus.WAITING}, None),
            ([_ev("b", 3, "run_completed")], {"status": RunStatus.COMPLETED, "finished_at": 1.0}, _entry("run.end", "b")),
            ([_ask("t", 2, "approval:t"), _ev("t", 3, "run_waiting")], {"status": RunStatus.WAITING}, None),
            ([_ev("t", 4, "step_completed", step="s/signal:approval:t", data=timed_out)], {"status": RunStatus.RUNNING}, None),
            (_run("d"), [_ev("d", 1, "run_started")], _entry("run.start", "d")),
            (_run("d"), [_ev("d", 1, "run_started"), _ask("d", 2, "approval:d")], _entry("run.start", "d")),  # twice at once
        ])  # fmt: skip
        assert out == [True, False, True, True, True, True, True, False]
        assert [e.seq for e in await store.load_events("d")] == [1]
        assert await _inbox(store) == {("a", "approval:a"), ("c", "approval:c")}
        assert [e.seq for e in await store.load_events("b")] == [1, 2, 3]  # its second creation wrote nothing
        entries = {(e.action, e.target): e.seq for e in await store.list_audit()}
        assert ("run.start", "b") not in entries
        after = await _chain_holds(store)
        new = [s for s in after if s not in before]
        assert [entries[("run.start", "c")], entries[("run.end", "b")], entries[("run.start", "d")]] == new
        assert new == list(range(new[0], new[0] + 3))
        assert [e.target for e in await store.list_audit() if e.action == "run.start"].count("d") == 1
    finally:
        await store.close()


async def test_a_group_with_bad_writes_lands_the_good_ones_and_names_each_failure(store: Any) -> None:
    """Writes made at the same moment (a group on SQLite and PostgreSQL): one repeating an event
    another engine wrote, one to a run that does not exist, and good ones with audit entries. Each
    bad one gets its own error (LeaseLost, NotFound), the good ones land, and the audit chain has
    no gap where the refused entries would have gone."""
    await store.create_run(_run("x"), [_ev("x", 1, "run_started")])
    await store.create_run(_run("y"), [_ev("y", 1, "run_started")])
    await store.create_run(_run("w0"), [_ev("w0", 1, "run_started")])
    await asyncio.sleep(0)
    results = await asyncio.gather(
        store.append([_ev("w0", 2)]),  # written at once: the others gather behind it
        store.append([_ev("x", 1, "run_started")], {"status": RunStatus.COMPLETED}, audit=_entry("run.end", "x")),
        store.append([_ev("y", 2, "run_completed")], {"status": RunStatus.COMPLETED}, audit=_entry("run.end", "y")),
        store.append([_ev("ghost", 1)], audit=_entry("run.end", "ghost")),
        store.create_run(_run("z"), [_ev("z", 1, "run_started")], audit=_entry("run.start", "z")),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None and results[4] is True
    assert isinstance(results[1], LeaseLost), results[1]
    assert isinstance(results[3], NotFound), results[3]
    assert (await store.get_run("x")).status is RunStatus.RUNNING
    assert (await store.get_run("y")).status is RunStatus.COMPLETED
    targets = [e.target for e in await store.list_audit() if e.action in ("run.end", "run.start")]
    assert sorted(targets) == ["y", "z"]
    await _chain_holds(store)


# -- schema 14: one trigger keeps the inbox, the governing index written with OR ------------------------


def _old_triggers(db: sqlite3.Connection) -> None:
    """Put back the two triggers of schemas 7 to 13 in place of approvals_kept."""
    from podium.storage._sqlite_schema import MIGRATIONS

    db.execute("DROP TRIGGER approvals_kept")
    for version, name in ((7, "approvals_ended"), (10, "approvals_parked")):
        sql = dict(MIGRATIONS)[version]
        start = sql.index(f"CREATE TRIGGER {name}")
        db.execute(sql[start : sql.index("END;", start) + 3])


async def test_the_one_trigger_keeps_the_inbox_as_the_two_did(tmp_path: Path) -> None:
    """The same writes (a run asking, a decision, a timeout, parking, resuming, ending; requests
    written without the store's statements, as a release before schema 9 wrote them) on a store with
    approvals_kept and on one with approvals_ended and approvals_parked leave the same inbox."""
    import random

    dbs = []
    for name in ("new", "old"):
        store: Any = open_store(f"sqlite:///{tmp_path}/{name}.db")
        await store.open()
        await store.close()
        db = sqlite3.connect(tmp_path / f"{name}.db", isolation_level=None)
        if name == "old":
            _old_triggers(db)
        dbs.append(db)
    rng = random.Random(14)
    statuses = ["pending", "running", "waiting", "completed", "failed", "cancelled"]
    seqs: dict[str, int] = {}
    for step in range(1500):
        rid = f"r{rng.randrange(12)}"
        kind = rng.randrange(6)
        for db in dbs:
            r = random.Random(step)  # the same choices on both
            if rid not in seqs or kind == 0:
                db.execute(
                    "INSERT OR IGNORE INTO runs (id, workflow, version, status, created_at) VALUES (?, 'wf', '1', 'running', 0)",
                    (rid,),
                )
            seq = seqs.get(rid, 0) + 1
            name = f"approval:{r.randrange(3)}"
            if kind == 1:  # a request, as a release before schema 9 wrote it: the event alone
                e = _ask(rid, seq, name)
                db.execute(
                    "INSERT INTO events (run_id, seq, type, ts, step, iteration, idx, attempt, data) VALUES (?,?,?,?,?,0,NULL,1,?)",
                    (rid, seq, e.type, e.ts, e.step, e.data),
                )
            elif kind == 2:  # the wait's end (timed out)
                data = json.dumps({"started": 1, "signal": name, "timed_out": True, "output": None})
                db.execute(
                    "INSERT INTO events (run_id, seq, type, ts, step, iteration, idx, attempt, data) "
                    "VALUES (?,?,'step_completed',0,?,0,NULL,1,?)",
                    (rid, seq, f"s/signal:{name}", data),
                )
            elif kind == 3:  # a decision
                db.execute("INSERT OR IGNORE INTO signals (run_id, name, payload, created_at) VALUES (?,?,NULL,0)", (rid, name))
            elif kind == 4:  # a request the store's statements opened (schema 9 and later)
                db.execute(
                    "INSERT OR IGNORE INTO approvals (run_id, name, seq, workflow, requested_at) VALUES (?,?,?,'wf',0)",
                    (rid, name, seq),
                )
            else:
                db.execute("UPDATE runs SET status = ? WHERE id = ?", (statuses[r.randrange(6)], rid))
        seqs[rid] = seqs.get(rid, 0) + (1 if kind in (1, 2) else 0)
        rows = [db.execute("SELECT run_id, name, seq FROM approvals ORDER BY 1, 2").fetchall() for db in dbs]
        assert rows[0] == rows[1], step
    for db in dbs:
        db.close()


def test_the_migration_to_14_run_again_leaves_one_trigger_and_the_index(tmp_path: Path) -> None:
    from podium.storage._sqlite_schema import MIGRATIONS
    from podium.storage.sqlite import _statements

    asyncio.run(_made(f"sqlite:///{tmp_path}/p.db"))
    db = sqlite3.connect(tmp_path / "p.db", isolation_level=None)
    for stmt in _statements(dict(MIGRATIONS)[14]):
        db.execute(stmt)
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE tbl_name IN ('runs', 'audit')")}
    assert "approvals_kept" in names and "audit_governing" in names
    assert not names & {"approvals_ended", "approvals_parked"}
    db.close()


async def _made(url: str) -> None:
    store: Any = open_store(url)
    await store.open()
    await store.close()


async def test_governance_reads_see_every_entry_whichever_condition_and_schema(tmp_path: Path) -> None:
    """Kill switches and policies set by a store at 14, read with the condition of the previous
    release (IN) and with 14's (OR); and by a process that opened the store at 13 (unmigrated)
    while another migrated it to 14 and set more: every entry, in order."""
    from podium.governance.policy import Policy
    from podium.storage._audit import GOVERNING
    from podium.storage._sqlite_schema import GOVERNING_OR

    url = f"sqlite:///{tmp_path}/p.db"
    await _made(url)
    db = sqlite3.connect(tmp_path / "p.db", isolation_level=None)  # back to 13, as it was written
    db.execute("DROP INDEX audit_governing")
    db.execute(
        "CREATE INDEX audit_governing ON audit (target, seq) WHERE action IN ('killswitch.set', 'killswitch.clear', 'policy.set')"
    )
    _old_triggers(db)
    db.execute("DELETE FROM schema_migrations WHERE version >= 14")
    db.close()
    old: Any = open_store(url)
    old.auto_migrate = False
    await old.open()
    try:
        async with Client(url, recover=False) as c:  # migrates to 14, then governs
            await c.set_switch("all", reason="drill")
            await c.set_switch("workflow", "wf", reason="drill")
            await c.clear_switch("all")
            await c.set_policy("wf", Policy(allowed_tools=["search"]))
        want = [(e.seq, e.action, e.target) for e in await old.governing_entries()]
        assert [a for _, a, _ in want] == ["killswitch.set", "killswitch.set", "killswitch.clear", "policy.set"]
        assert set((await old.governing_heads()).keys()) == {t for _, _, t in want}
        for cond in (GOVERNING, GOVERNING_OR):
            got = old.db.execute(f"SELECT seq, action, target FROM audit WHERE {cond} ORDER BY seq").fetchall()
            assert got == want
        new: Any = open_store(url)
        await new.open()
        try:
            assert [(e.seq, e.action, e.target) for e in await new.governing_entries()] == want
            assert await new.governing_heads() == await old.governing_heads()
        finally:
            await new.close()
    finally:
        await old.close()


# -- the executor's shared empty defaults (engine/executor.py, waits.py, context.py) ----------------------


def _shared_defaults() -> dict[str, Any]:
    from podium.engine.executor import RunExecutor
    from podium.engine.recording import EMPTY, NO_SET

    return {
        name: value
        for cls in RunExecutor.__mro__
        for name, value in vars(cls).items()
        if value is EMPTY or value is NO_SET
    }


async def _approve_when_asked(client: Client, run_id: str) -> None:
    for _ in range(1000):
        if pending := await client.approvals(run_id=run_id):
            await client.decide(run_id, pending[0]["name"], approve=True)
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"run {run_id} asked nothing")


async def test_runs_that_write_every_shared_default_leave_it_empty_for_the_next(tmp_path: Path) -> None:
    """A run that loops (earlier outputs, passes, decisions), retries (failed attempts), asks an
    approval in each pass (requests, deadlines, decisions) and is taken up again from its log by
    another engine: what it wrote is its own. A run started after it in the same process reads
    nothing of it (``ctx.previous`` is the default), and the class's shared defaults are still the
    empty mapping and set."""
    from podium import Loop, RetryPolicy, StepContext, Workflow
    from podium.engine.recording import EMPTY, NO_SET

    before = _shared_defaults()
    assert before and all(len(v) == 0 for v in before.values())
    flaky: dict[int, int] = {}
    wf = Workflow("writes-everything")

    @wf.step(retry=RetryPolicy(max_attempts=2, initial_interval=0))
    async def once(input: int) -> int:
        flaky[input] = flaky.get(input, 0) + 1
        if flaky[input] == 1:
            raise RuntimeError("first attempt fails")
        return input

    @wf.step(loop=Loop(to="ask", while_=lambda ask: ask["n"] < 2, max_iterations=5))
    async def ask(ctx: StepContext, once: int) -> dict[str, Any]:
        await ctx.approval({"pass": ctx.iteration})
        return {"n": ctx.iteration, "prev": ctx.previous("ask"), "secret": f"run-{once}"}

    peek = Workflow("peeks")

    @peek.step(loop=Loop(to="look", while_=lambda look: False, max_iterations=2))
    async def look(ctx: StepContext) -> Any:
        return ctx.previous("ask", "nothing")

    url = f"sqlite:///{tmp_path}/p.db"
    async with Client(url, workflows=[wf, peek]) as c:
        h = await c.start(wf, 7)
        await _approve_when_asked(c, h.id)  # pass 0 decided here; pass 1 asked, then this engine stops
        for _ in range(1000):
            if len([e for e in await c.store.load_events(h.id) if e.type == "step_waiting"]) == 2:
                break
            await asyncio.sleep(0.01)
    async with Client(url, workflows=[wf, peek]) as c:  # taken up from its log
        await _approve_when_asked(c, h.id)
        await _approve_when_asked(c, h.id)
        for _ in range(1000):
            if (out := await c.store.get_run(h.id)).status.finished:
                break
            await asyncio.sleep(0.01)
        assert out.status is RunStatus.COMPLETED, out
        assert json.loads(out.output)["prev"] == {"n": 1, "prev": {"n": 0, "prev": None, "secret": "run-7"}, "secret": "run-7"}
        assert await c.run(peek) == "nothing"
    after = _shared_defaults()
    assert after.keys() == before.keys()
    assert all(after[k] is before[k] and len(after[k]) == 0 for k in after)
    assert len(EMPTY) == 0 and len(NO_SET) == 0


# -- the audit entries' one JSON encoder (governance/audit.py entry_json) ----------------------------


class _Odd:
    """A value JSON cannot write, whose text (``default=str``) is itself made by the encoder."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __str__(self) -> str:
        from podium.governance.audit import entry_json

        return "odd:" + entry_json(self.inner)


def _values() -> list[Any]:
    return [
        None, True, 0, -1, 2**70, 1.5, float("nan"), float("inf"), -float("inf"), 1e-320, "", "plain",
        "é ü 日本 \u2028 \x00 \x1b[31m \ud800", {"k": [1, {"z": None}], 2: "int key", 1.5: "float key", None: 1, True: 0},
        [[], {}, ()], _Odd({"nested": _Odd([1, "ü"])}), {"when": time, "odd": _Odd("x")}, b"bytes",
        {"tuple": (1, 2), "set": {3}},
    ]  # fmt: skip


def test_entry_json_writes_the_text_json_dumps_writes() -> None:
    from podium.governance.audit import entry_json

    for v in _values():
        assert entry_json(v) == json.dumps(v, default=str), v


def test_entry_json_from_many_threads_at_once_writes_each_value_s_own_text() -> None:
    """Sync steps run in threads and the server has threads of its own: the one encoder holds no
    state of a call (no circular check, no buffer of its own), so calls at once do not mix."""
    import threading

    from podium.governance.audit import entry_json

    values = [{"i": i, "text": "x" * (i % 50), "odd": _Odd([i, "ü" * i])} for i in range(200)]
    want = [json.dumps(v, default=str) for v in values]
    wrong: list[int] = []
    start = threading.Barrier(6)

    def work(shift: int) -> None:
        start.wait()
        for n in range(2000):
            i = (n * 7 + shift) % len(values)
            if entry_json(values[i]) != want[i]:
                wrong.append(i)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_entry_json_of_a_value_that_contains_itself_raises_instead_of_looping() -> None:
    """No circular check (json.dumps raises ValueError): the depth limit stops it, as RecursionError;
    the engine's entries hold no such value (their details are JSON-like data)."""
    from podium.governance.audit import entry_json

    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(RecursionError):
        entry_json(loop)


# -- cancel_requests (storage/_sqlite_runs.py) ---------------------------------------------------------


async def test_an_ended_run_is_never_named_asked_to_cancel_however_many_are(store: Any) -> None:
    """A run asked to cancel that ended anyway (it completed first) keeps its mark. SQLite's partial
    index path leaves it out (it reads unfinished runs only), so its fallback (more asked than its
    bound) and the other stores must too: the answer must not depend on how many other runs were
    asked."""
    ended = RunRecord(
        id="ended", workflow="wf", version="1", status=RunStatus.COMPLETED, input="{}", created_at=1.0,
        finished_at=2.0, cancel_requested=True,
    )  # fmt: skip
    await store.create_run(ended)
    await store.create_run(_run("live"))
    await store.request_cancel("live")
    assert await store.cancel_requests(["ended", "live"]) == ["live"]
    many = [f"q{i:04d}" for i in range(400)]  # asked and driven by nobody: over the bound for 2 runs
    await store.create_runs([(_run(rid, RunStatus.PENDING), [], None) for rid in many])
    for rid in many:
        await store.request_cancel(rid)
    assert await store.cancel_requests(["ended", "live"]) == ["live"]
    assert await store.cancel_requests(["live", "live"]) == ["live", "live"]  # each id given, as given


def test_sqlite_cancel_requests_reads_the_partial_index(tmp_path: Path) -> None:
    from podium.storage._sqlite_runs import _CANCELS

    asyncio.run(_made(f"sqlite:///{tmp_path}/p.db"))
    db = sqlite3.connect(tmp_path / "p.db")
    plan = " ".join(str(r) for r in db.execute("EXPLAIN QUERY PLAN " + _CANCELS, ("pending", "running", "waiting", 5)))
    db.close()
    assert "runs_cancel" in plan, plan


def test_a_previous_release_reading_governance_on_schema_14_scans_the_audit_log(tmp_path: Path) -> None:
    """Left as it is (docs/operations.md, "Past SQLite schema 14"): the condition of the previous
    release (IN) is not one SQLite proves implies the index's (OR), so such a process reads every
    entry at each sweep until it is restarted onto this release. The answer is the same."""
    from podium.storage._audit import GOVERNING
    from podium.storage._sqlite_schema import GOVERNING_OR

    asyncio.run(_made(f"sqlite:///{tmp_path}/p.db"))
    db = sqlite3.connect(tmp_path / "p.db")
    plans = {
        cond: " ".join(str(r) for r in db.execute(f"EXPLAIN QUERY PLAN SELECT target, seq FROM audit WHERE {cond}"))
        for cond in (GOVERNING, GOVERNING_OR)
    }
    db.close()
    assert "audit_governing" in plans[GOVERNING_OR]
    assert "audit_governing" not in plans[GOVERNING]  # the scan: a whole read of the log per sweep
