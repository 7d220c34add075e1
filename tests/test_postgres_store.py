"""PostgreSQL-specific store tests: migrations, concurrent opens and claims, fencing across
processes' connections, connection errors. The shared behaviour is in test_store_conformance.py.

Every test gets a fresh database on the local server (``pg_url``) and skips, saying why, without one.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import pytest

pytestmark = pytest.mark.postgres

psycopg = pytest.importorskip("psycopg")

from podium import ConfigError, LeaseLost, NotFound, RunStatus, StoreError, open_store  # noqa: E402
from podium.records import Event, RunRecord  # noqa: E402


def _store_module():
    from podium.storage import postgres

    return postgres


def _run(rid: str, *, created: float = 0.0, **kw) -> RunRecord:
    return RunRecord(
        id=rid, workflow="wf", version="1", status=RunStatus.RUNNING, created_at=created or time.time(), **kw
    )


def _ev(rid: str, seq: int, **kw) -> Event:
    return Event(run_id=rid, seq=seq, type="step_completed", ts=time.time(), **kw)


def _query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


# -- migrations -----------------------------------------------------------------------------------


async def test_migrations_applied_from_empty_database(pg_url):
    pg = _store_module()
    latest = pg.MIGRATIONS[-1][0]
    assert _query(pg_url, "SELECT to_regclass('runs'), to_regclass('schema_migrations')") == [(None, None)]
    async with open_store(pg_url) as store:
        assert await store.schema_version() == latest
        assert await store.migrate() == []
    assert [v for (v,) in _query(pg_url, "SELECT version FROM schema_migrations ORDER BY version")] == [
        v for v, _ in pg.MIGRATIONS
    ]
    types = dict(
        (f"{t}.{c}", dt)
        for t, c, dt in _query(
            pg_url,
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_name IN ('runs', 'events')",
        )
    )
    assert types["runs.id"] == "text"
    assert types["runs.created_at"] == types["events.ts"] == "double precision"
    assert types["runs.input"] == types["runs.output"] == types["events.data"] == "text"  # not jsonb
    assert types["runs.cancel_requested"] == "boolean"
    pkey = _query(pg_url, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'events_pkey'")
    assert pkey == [("PRIMARY KEY (run_id, seq)",)]
    fks = _query(pg_url, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'f'")
    assert [d for (d,) in fks if "REFERENCES runs(id)" in d]
    indexes = {
        name for (name,) in _query(pg_url, "SELECT indexname FROM pg_indexes WHERE tablename = 'runs'")
    }
    assert {"runs_created", "runs_workflow", "runs_status", "runs_parent"} <= indexes


async def test_upgrade_from_previous_version(pg_url):
    """Bring a fresh database to the previous schema version, then upgrade it to the latest."""
    pg = _store_module()
    versions = [v for v, _ in pg.MIGRATIONS]
    latest, previous = versions[-1], (versions[-2] if len(versions) > 1 else 0)
    store = pg.PostgresStore(pg_url, auto_migrate=False)
    await store.open()
    try:
        assert await store.schema_version() == 0
        assert await store.migrate(target=previous) == [v for v in versions if v <= previous]
        assert await store.schema_version() == previous
        assert await store.migrate() == [v for v in versions if v > previous]
        assert await store.schema_version() == latest
        assert await store.migrate() == []
        assert await store.migrate(target=previous) == []  # no downgrades
    finally:
        await store.close()
    async with open_store(pg_url) as store:  # an up-to-date database opens without migrating
        assert await store.schema_version() == latest
        assert await store.create_run(_run("r1"), [_ev("r1", 1)])
        await store.append([_ev("r1", 2)])
        assert [e.seq for e in await store.load_events("r1")] == [1, 2]


async def test_concurrent_opens_of_a_fresh_database_all_succeed(pg_url):
    pg = _store_module()
    stores = [open_store(pg_url) for _ in range(4)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        for s in stores:
            assert await s.schema_version() == pg.MIGRATIONS[-1][0]
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    rows = _query(pg_url, "SELECT version, count(*) FROM schema_migrations GROUP BY version ORDER BY version")
    assert rows == [(v, 1) for v, _ in pg.MIGRATIONS]


async def test_concurrent_explicit_migrations_apply_each_version_once(pg_url):
    pg = _store_module()
    stores = [pg.PostgresStore(pg_url, auto_migrate=False) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        applied = await asyncio.gather(*(s.migrate() for s in stores))
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    assert sorted(v for a in applied for v in a) == [v for v, _ in pg.MIGRATIONS]


# -- concurrency and fencing ----------------------------------------------------------------------


async def test_concurrent_claims_never_hand_a_run_to_two_owners(pg_url):
    stores = [open_store(pg_url) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        for i in range(200):
            await stores[0].create_run(_run(f"r{i:03}", created=1000.0 + i))
        now = time.time()

        async def claimer(store, owner: str, at: float) -> list[str]:
            got: list[str] = []
            while True:
                runs = await store.claim_runs(owner, lease_seconds=10, limit=random.randint(1, 9), now=at)
                if not runs:
                    return got
                assert all(r.owner == owner for r in runs)
                got += [r.id for r in runs]

        for at in (now, now + 60):  # then again once every lease has expired
            owners = [f"engine-{i}-{j}" for i in range(4) for j in range(2)]  # 2 claimers per store
            results = await asyncio.gather(*(claimer(stores[k // 2], o, at) for k, o in enumerate(owners)))
            claimed = [rid for got in results for rid in got]
            assert len(claimed) == 200 and len(set(claimed)) == 200
            in_db = dict(_query(pg_url, "SELECT id, owner FROM runs"))
            for owner, got in zip(owners, results, strict=True):
                assert all(in_db[rid] == owner for rid in got)
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_racing_writers_of_one_seq_exactly_one_wins(pg_url):
    a, b = open_store(pg_url), open_store(pg_url)
    await asyncio.gather(a.open(), b.open())
    try:
        for i in range(30):
            await a.create_run(_run(f"r{i}"), [_ev(f"r{i}", 1)])

        async def write(store, rid: str, who: str) -> str:
            try:
                await store.append([_ev(rid, 2, data=f'"{who}"')])
            except LeaseLost:
                return "lost"
            return who

        for i in range(30):
            outcome = await asyncio.gather(write(a, f"r{i}", "a"), write(b, f"r{i}", "b"))
            assert sorted(outcome) in (["a", "lost"], ["b", "lost"])
            events = await a.load_events(f"r{i}")
            assert [e.seq for e in events] == [1, 2]
            assert events[1].data == f'"{"a" if "a" in outcome else "b"}"'
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_event_for_missing_run_is_not_found(pg_url):
    async with open_store(pg_url) as store:
        with pytest.raises(NotFound):
            await store.append([_ev("ghost", 1)])
        with pytest.raises(NotFound):
            await store.append([_ev("ghost", 1), _ev("ghost", 2)], {"status": RunStatus.COMPLETED})


async def test_failed_batch_writes_nothing(pg_url):
    async with open_store(pg_url) as store:
        await store.create_run(_run("r1"), [_ev("r1", 1)])
        with pytest.raises(LeaseLost):
            await store.append([_ev("r1", 2), _ev("r1", 3), _ev("r1", 1)], {"status": RunStatus.FAILED})
        with pytest.raises(ValueError):
            await store.append([_ev("r1", 2)], {"owner": "me"})
        assert [e.seq for e in await store.load_events("r1")] == [1]
        assert (await store.get_run("r1")).status is RunStatus.RUNNING


async def test_a_failed_audited_creation_writes_nothing_and_the_store_goes_on(pg_url):
    """A run's creation is written in one pipelined transaction (BEGIN, its row and events, the audit
    numbers; then its audit entry and COMMIT): one that fails (two events with one seq) leaves no row,
    no event and no audit entry, its writer's chain where it was, and the connection usable."""
    from podium import Client
    from podium.records import AuditEntry

    def start(rid: str) -> AuditEntry:
        return AuditEntry(ts=time.time(), actor="engine", action="run.start", target=rid)

    async with open_store(pg_url) as store:
        await store.create_run(_run("ok1"), [_ev("ok1", 1)], audit=start("ok1"))
        with pytest.raises(LeaseLost, match="duplicate event sequence numbers"):
            await store.create_run(_run("bad"), [_ev("bad", 1), _ev("bad", 1)], audit=start("bad"))
        assert await store.get_run("bad") is None and await store.load_events("bad") == []
        assert await store.audit_for("bad") == []
        for rid in ("ok2", "ok3"):  # the same pool's connections go on
            await store.create_run(_run(rid), [_ev(rid, 1)], audit=start(rid))
        assert await store.create_run(_run("ok3"), [_ev("ok3", 1)], audit=start("ok3")) is False
        assert [a.target for a in await store.audit_for("ok3")] == ["ok3"]  # a run that existed: no second entry
        entries = [e for e in await store.list_audit() if e.action == "run.start"]
        assert [e.target for e in entries] == ["ok1", "ok2", "ok3"]
        assert [e.cseq for e in entries] == sorted(e.cseq for e in entries)
    async with Client(pg_url) as c:  # the chain is whole: nothing of the failed creation in it
        checked, problem = await c.verify_audit()
        assert problem is None and checked >= 3


async def test_payload_text_round_trips_byte_for_byte(pg_url):
    payloads = [
        '{"b": 1,   "a": 2}',
        '{"a":1,"a":2}',
        " [1.0, 1e2, -0] ",
        '"\\u00e9 é"',
        "not json",
        "",
        "\t\n",
    ]
    async with open_store(pg_url) as store:
        await store.create_run(_run("r1", input=payloads[0]))
        await store.append([_ev("r1", i + 1, data=p) for i, p in enumerate(payloads)])
        await store.append([_ev("r1", 100)], {"output": payloads[1], "error": payloads[2]})
        assert [e.data for e in await store.load_events("r1")][: len(payloads)] == payloads
        run = await store.get_run("r1")
        assert (run.input, run.output, run.error) == tuple(payloads[:3])


async def test_ids_sort_bytewise_whatever_the_locale(pg_url):
    async with open_store(pg_url) as store:
        for rid in ["b", "B", "a", "_", "A"]:
            await store.create_run(_run(rid, created=5.0))
        assert [r.id for r in await store.list_runs()] == sorted(["b", "B", "a", "_", "A"], reverse=True)
        claimed = await store.claim_runs("me", lease_seconds=5, limit=10, now=time.time())
        assert [r.id for r in claimed] == sorted(["b", "B", "a", "_", "A"])


async def test_cancelled_append_leaves_the_store_usable(pg_url):
    async with open_store(pg_url) as store:
        await store.create_run(_run("r1"))
        tasks = [asyncio.create_task(store.append([_ev("r1", i)])) for i in range(1, 21)]
        await asyncio.sleep(0)
        for t in tasks[::2]:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        seqs = [e.seq for e in await store.load_events("r1")]
        assert set(seqs) >= set(range(2, 21, 2))  # the uncancelled ones are all there
        await store.append([_ev("r1", 21)], {"status": RunStatus.COMPLETED})
        assert (await store.get_run("r1")).status is RunStatus.COMPLETED


async def test_connections_dropped_while_idle_are_replaced(pg_url):
    """After a server restart (here: every backend of the database terminated) the pooled
    connections are dead; the store notices before using one instead of failing operations."""
    dbname = pg_url.rsplit("/", 1)[1]
    others = "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
    async with open_store(pg_url) as store:
        await store.create_run(_run("r1"))
        await asyncio.gather(*(store.get_run("r1") for _ in range(8)))  # grow the pool
        assert _query(pg_url, f"SELECT count(pg_terminate_backend(pid)) {others}", (dbname,))[0][0] >= 1
        for _ in range(100):
            if not _query(pg_url, f"SELECT count(*) {others}", (dbname,))[0][0]:
                break
            await asyncio.sleep(0.05)
        assert (await store.get_run("r1")).id == "r1"
        await asyncio.gather(*(store.append([_ev("r1", i)]) for i in range(1, 9)))
        assert len(await store.load_events("r1")) == 8


async def test_unopened_store_is_store_error(pg_url):
    store = open_store(pg_url)
    with pytest.raises(StoreError, match="not open"):
        await store.get_run("r1")
    await store.close()  # harmless


# -- configuration errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("postgresql://postgres@127.0.0.1:1/podium", "running and accepting connections at 127.0.0.1:1"),
        ("postgresql://postgres:s3cret@127.0.0.1:5432/podium_no_such_db", "createdb"),
        ("postgresql://podium_no_such_role:s3cret@127.0.0.1:5432/postgres", "user and password"),
    ],
)
async def test_unreachable_or_wrong_server_is_config_error(pg_url, url, hint):
    store = open_store(url)
    with pytest.raises(ConfigError) as info:
        await store.open()
    message = str(info.value)
    assert hint in message and "cannot connect to the PostgreSQL store" in message
    assert "s3cret" not in message and "\n" not in message
    await store.close()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://127.0.0.1:notaport/podium",
        "postgresql://127.0.0.1/podium?no_such_option=1",
        "postgresql://[::1/podium",
    ],
)
def test_malformed_url_is_config_error(url):
    pytest.importorskip("psycopg_pool")
    with pytest.raises(ConfigError, match="invalid PostgreSQL store URL"):
        open_store(url)


async def test_non_utf8_database_is_config_error(pg_database: Callable[[str], str]):
    url = pg_database("ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
    store = open_store(url)
    with pytest.raises(ConfigError, match="UTF8"):
        await store.open()
    await store.close()


async def test_a_runs_end_waits_for_its_cancelled_step_event_still_landing(pg_url: str) -> None:
    """A step's event whose writer was cancelled while it waited in the appends group still lands
    (its seq and digest are counted). The run's end goes through another group, on another
    connection: it must not commit while that event is still on its way (a reader would see a
    hole, and a hole that stays if the late write failed). Here the step's insert is held by a
    competing transaction on the same key; the end must wait until the step has landed."""
    from podium.records import AuditEntry

    async with _store_module().PostgresStore(pg_url) as store:
        run = RunRecord(id="r", workflow="wf", version="1", status=RunStatus.RUNNING, input="{}", created_at=1.0)
        await store.create_run(run, [Event(run_id="r", seq=1, type="run_started", ts=1.0)])
        async with await psycopg.AsyncConnection.connect(pg_url) as blocker:
            await blocker.execute(
                "INSERT INTO events (run_id, seq, type, ts, iteration, attempt) VALUES ('r', 2, 'hold', 1.0, 0, 0)"
            )  # uncommitted: the step's insert of seq 2 waits for this transaction
            step = asyncio.ensure_future(store.append_one("r", 2, "step_completed", 1.0, "s", 0, None, 1, "{}"))
            await asyncio.sleep(0)  # queued in the appends group
            step.cancel()
            await asyncio.gather(step, return_exceptions=True)
            end = asyncio.ensure_future(
                store.append(
                    [Event(run_id="r", seq=3, type="run_completed", ts=2.0)],
                    {"status": RunStatus.COMPLETED},
                    audit=AuditEntry(ts=2.0, actor="engine", action="run.end", target="r"),
                )
            )
            done, _ = await asyncio.wait([end], timeout=1.0)
            assert not done, "the run's end committed while its step's event was still on its way"
            await blocker.rollback()  # the step's insert goes on
        await asyncio.wait_for(end, 10)
        assert [(e.seq, e.type) for e in await store.load_events("r")] == [
            (1, "run_started"), (2, "step_completed"), (3, "run_completed"),
        ]  # fmt: skip
