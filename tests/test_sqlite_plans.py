"""The SQLite store reads runs from an index, never by walking the whole table or every parked
run: EXPLAIN QUERY PLAN of each statement the list, claim, timer and owner queries really send.
Migration 8 dropped the indexes a run's start and end no longer pay for (runs_created,
runs_workflow, runs_ready; runs_parent became partial); a store migrated from schema 7 lists the
same runs as before."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podium import RunStatus
from podium.records import RunRecord
from podium.storage.sqlite import SQLiteStore


class _Recorder:
    """A connection that notes each statement sent through it."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self.sent: list[tuple[str, Any]] = []

    def execute(self, sql: str, params: Any = ()) -> Any:
        self.sent.append((sql, params))
        return self._db.execute(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def _run(
    rid: str, created: float, *, status: RunStatus = RunStatus.WAITING, workflow: str = "wf", **kw: Any
) -> RunRecord:
    return RunRecord(
        id=rid, workflow=workflow, version="1", status=status, input="{}", created_at=created, **kw
    )


def _runs() -> Iterator[RunRecord]:
    """Parked runs of two workflows, a few of every other status, children of p000; the pending and
    running ones held by an engine two times in three (schema 12 indexes them in runs_owned, not in the
    status indexes)."""
    statuses = list(RunStatus)
    for i in range(60):
        status = RunStatus.WAITING if i % 4 else statuses[i // 4 % len(statuses)]
        held = status in (RunStatus.PENDING, RunStatus.RUNNING) and i not in (24, 28)
        yield _run(
            f"p{i:03d}",
            1000.0 + i,
            status=status,
            workflow=f"wf{i % 2}",
            parent_run_id="p000" if i % 7 == 3 else None,
            wake_at=time.time() + 3600 if i % 3 == 0 else None,
            owner=f"engine{i % 3}" if held else None,
            lease_expires_at=time.time() + 3600 if held else None,
        )


@pytest.fixture
async def store(tmp_path: Path):
    s = SQLiteStore(f"sqlite:///{tmp_path}/plans.db")
    await s.open()
    for run in _runs():
        await s.create_run(run)
    yield s
    await s.close()


def _plans(store: SQLiteStore, sent: list[tuple[str, Any]]) -> list[tuple[str, list[str]]]:
    out = []
    for sql, params in sent:
        if sql.split()[0].upper() in ("BEGIN", "COMMIT", "ROLLBACK"):
            continue
        out.append((sql, [r[3] for r in store.db.execute("EXPLAIN QUERY PLAN " + sql, params)]))
    return out


async def _record(store: SQLiteStore, call: Any) -> list[tuple[str, list[str]]]:
    raw = store._db
    rec = _Recorder(raw)
    store._db = rec  # type: ignore[assignment]
    try:
        await call()
    finally:
        store._db = raw
    assert rec.sent
    return _plans(store, rec.sent)


_LISTS = {
    "all": {},
    "all, a page on": {"before": (1030.0, "p030")},
    "all, offset": {"offset": 10},
    "workflow": {"workflow": "wf1"},
    "workflow, a page on": {"workflow": "wf1", "before": (1030.0, "p030")},
    "one status": {"status": [RunStatus.WAITING]},
    "one status, workflow, a page on": {
        "status": [RunStatus.WAITING],
        "workflow": "wf0",
        "before": (1030.0, "p030"),
    },
    "several statuses": {"status": [RunStatus.WAITING, RunStatus.RUNNING]},
    "several statuses, workflow": {"status": [RunStatus.WAITING, RunStatus.FAILED], "workflow": "wf0"},
    "children": {"parent_run_id": "p000"},
    "children, statuses, workflow": {
        "parent_run_id": "p000",
        "status": [RunStatus.WAITING],
        "workflow": "wf1",
    },
}


@pytest.mark.parametrize("filters", list(_LISTS.values()), ids=list(_LISTS))
async def test_each_list_reads_index_ranges_only(store, filters):
    plans = await _record(store, lambda: store.list_runs(limit=5, **filters))
    for sql, plan in plans:
        reads = [line for line in plan if re.match(r"(SCAN|SEARCH) runs\b", line)]
        assert reads, (sql, plan)
        for line in reads:
            # a SEARCH of an index range, never a SCAN of the table or of a whole index (the held
            # runs: the runs_owned index, owner IS NOT NULL, in creation order from schema 13: read
            # newest first up to the LIMIT, a SCAN of that partial index when no cursor bounds it)
            assert re.match(
                r"(SEARCH runs USING (COVERING )?INDEX runs_(status|workflow_status|parent|owned) |SCAN runs USING INDEX runs_owned$)", line
            ), (sql, plan)
        if "parent_run_id" in filters:
            assert all("runs_parent" in line for line in reads), plan
        # each status's range is read newest first (backwards) as it is, with no sort of its own
        # before its LIMIT (a sort inside a subquery shows right after its SEARCH); the held runs'
        # too (schema 13: runs_owned by status, in creation order; not every held run sorted)
        for i, line in enumerate(plan[:-1]):
            if re.match(r"(SEARCH|SCAN) runs USING (COVERING )?INDEX runs_(status|workflow_status|parent|owned)\b", line):
                assert "TEMP B-TREE" not in plan[i + 1], (sql, plan)


def _indexes_read(plan: list[str]) -> list[str]:
    """The indexes of runs a plan reads, in order; fails on a scan of the table or of an index."""
    out = []
    for line in plan:
        if re.match(r"(SCAN|SEARCH) runs\b", line):  # (runs_owned: a partial index of the held runs)
            m = re.match(r"SEARCH runs USING (?:COVERING )?INDEX (\w+) |SCAN runs USING (?:COVERING )?INDEX (runs_owned)$", line)
            assert m, plan
            out.append(m.group(1) or m.group(2))
    return out


async def test_claims_timers_and_owners_read_the_few_ready_or_held_runs_not_every_parked_one(store):
    # runs_status holds every parked run under status='waiting': the waiting runs that are due or
    # cancelled come from runs_wake and runs_cancel, the held ones from runs_owned
    now = time.time()
    claims = {
        "claim": lambda: store.claim_runs("me", lease_seconds=30, limit=5, now=now),
        "claim of a queue, stealing": lambda: store.claim_runs(
            "me", lease_seconds=30, limit=5, now=now, queues=["default"], steal_from=["gone"]
        ),
    }
    for name, call in claims.items():
        plans = await _record(store, call)
        ready = [_indexes_read(plan) for sql, plan in plans if "UNION" in sql]
        assert ready == [["runs_status", "runs_owned", "runs_wake", "runs_cancel"]], (name, plans)
        held = [_indexes_read(plan) for sql, plan in plans if "COUNT(*)" in sql]
        assert held == [["runs_owned"]], (name, plans)
    for call, index in (
        (lambda: store.due_timers(now), "runs_wake"),
        (lambda: store.unfinished_owners(), "runs_owned"),
    ):
        assert [_indexes_read(plan) for _, plan in await _record(store, call)] == [[index]]
    counts = await _record(store, lambda: store.count_runs(list(RunStatus)))
    assert [_indexes_read(plan) for _, plan in counts] == [["runs_status", "runs_owned"]]  # one statement
    assert all("COVERING INDEX" in line for _, plan in counts for line in plan if "SEARCH runs" in line), counts


async def test_runs_claimed_by_id_are_found_by_their_key(store):
    plans = await _record(
        store, lambda: store.claim_runs("me", lease_seconds=30, limit=5, now=time.time(), run_ids=["p004"])
    )
    union = [plan for sql, plan in plans if "UNION" in sql]
    assert union and all(
        "sqlite_autoindex_runs_1" in line for line in union[0] if line.startswith("SEARCH runs")
    )


def _indexes(store: SQLiteStore) -> dict[str, str]:
    return dict(
        store.db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='runs' AND sql IS NOT NULL"
        )
    )


async def test_a_store_of_schema_7_migrates_and_lists_the_same_runs(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/v7.db"
    old = SQLiteStore(url)
    old.auto_migrate = False
    await old.open()
    try:
        assert await old.migrate(7) == [1, 2, 3, 4, 5, 6, 7]
        assert {"runs_created", "runs_workflow", "runs_ready"} <= set(_indexes(old))
        runs = list(_runs())
        for run in runs:
            await old.create_run(run)
        before = {name: [r.id for r in await old.list_runs(limit=100, **f)] for name, f in _LISTS.items()}
    finally:
        await old.close()
    new = SQLiteStore(url)
    await new.open()
    try:
        assert await new.schema_version() >= 8
        indexes = _indexes(new)
        assert not {"runs_created", "runs_workflow", "runs_ready"} & set(indexes)
        assert "WHERE parent_run_id IS NOT NULL" in indexes["runs_parent"]
        after = {name: [r.id for r in await new.list_runs(limit=100, **f)] for name, f in _LISTS.items()}
        assert after == before
        # and what they should be, from the runs themselves
        newest = sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True)
        assert after["all"] == [r.id for r in newest]
        assert after["all, offset"] == [r.id for r in newest][10:]
        assert after["all, a page on"] == [r.id for r in newest if (r.created_at, r.id) < (1030.0, "p030")]
        assert after["workflow"] == [r.id for r in newest if r.workflow == "wf1"]
        assert after["children"] == [r.id for r in newest if r.parent_run_id == "p000"]
        assert after["several statuses, workflow"] == [
            r.id for r in newest if r.workflow == "wf0" and r.status in (RunStatus.WAITING, RunStatus.FAILED)
        ]
        # a page at a time, by cursor, every run once
        seen, cursor = [], None
        while page := await new.list_runs(limit=7, before=cursor):
            seen += [r.id for r in page]
            cursor = (page[-1].created_at, page[-1].id)
        assert seen == after["all"]
        assert await new.list_runs(status=[]) == []
    finally:
        await new.close()


async def test_a_store_left_at_an_older_schema_still_claims_lists_and_finds_timers(tmp_path: Path) -> None:
    """Review: with auto_migrate off, a store at schema 2 to 4 (no runs_owned, runs_cancel) worked
    before the INDEXED BY hints; it must still claim, list a run's children, find timers and owners."""
    for target in (2, 4, 5, 7, 11, 12):
        store = SQLiteStore(f"sqlite:///{tmp_path}/old{target}.db")
        store.auto_migrate = False
        await store.open()
        try:
            await store.migrate(target)
            await store.create_run(_run("a", 1.0, status=RunStatus.PENDING))
            await store.create_run(_run("c", 2.0, status=RunStatus.PENDING, parent_run_id="a"))
            assert [r.id for r in await store.list_runs(parent_run_id="a")] == ["c"]
            assert [r.id for r in await store.list_runs()] == ["c", "a"]  # (schema 13's predicates, older indexes)
            assert (await store.count_runs([RunStatus.PENDING]))[RunStatus.PENDING] == 2
            assert await store.finished_run_ids(before=time.time()) == []
            assert await store.due_timers(time.time()) == []
            claimed = await store.claim_runs("me", lease_seconds=30, limit=5, now=time.time())
            assert sorted(r.id for r in claimed) == ["a", "c"]
            assert await store.unfinished_owners() == ["me"]
        finally:
            await store.close()


async def test_a_run_with_many_events_parks_at_the_cost_of_one_with_few(tmp_path: Path) -> None:
    """Review 2: the work SQLite does to park a run (its VM steps, counted, not timed) does not grow
    with the number of the run's events that are not requests."""
    from podium.records import Event

    async def park_cost(n: int) -> int:
        async with SQLiteStore(f"sqlite:///{tmp_path}/c{n}.db") as s:
            await s.create_run(
                _run("r", 1.0, status=RunStatus.RUNNING), [Event(run_id="r", seq=1, type="run_started", ts=1.0)]
            )
            evs = [
                Event(run_id="r", seq=i, type="step_completed", ts=1.0, step="s", iteration=i, data="{}")
                for i in range(2, n)
            ]
            for i in range(0, len(evs), 5000):
                await s.append(evs[i : i + 5000])
            steps = [0]

            def count() -> int:
                steps[0] += 1
                return 0

            s.db.set_progress_handler(count, 100)
            await s.append([Event(run_id="r", seq=n, type="run_waiting", ts=1.0)], {"status": RunStatus.WAITING})
            s.db.set_progress_handler(None, 100)
            return steps[0]

    few, many = await park_cost(100), await park_cost(20_000)
    assert many < 3 * few + 10, (few, many)


def _expected(runs: list[RunRecord], filters: dict[str, Any]) -> list[str]:
    """What a list with ``filters`` must return, from the runs themselves (newest first)."""
    out = []
    for r in sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True):
        if "workflow" in filters and r.workflow != filters["workflow"]:
            continue
        if "status" in filters and r.status not in filters["status"]:
            continue
        if "parent_run_id" in filters and r.parent_run_id != filters["parent_run_id"]:
            continue
        if "before" in filters and (r.created_at, r.id) >= filters["before"]:
            continue
        out.append(r.id)
    return out[filters.get("offset", 0) :]


async def test_held_and_free_runs_are_listed_counted_and_claimed_alike(store):
    """Schema 12: the status indexes hold the runs nobody holds; the held ones come from runs_owned.
    Every list, count and claim sees both, as from the runs themselves."""
    runs = list(_runs())
    held = [r.id for r in runs if r.owner]
    assert held  # the fixture has held runs of both statuses that can be held
    assert {r.status for r in runs if r.owner} == {RunStatus.PENDING, RunStatus.RUNNING}
    for name, filters in _LISTS.items():
        got = [r.id for r in await store.list_runs(limit=100, **filters)]
        assert got == _expected(runs, filters), name
    for status in RunStatus:
        got = [r.id for r in await store.list_runs(limit=100, status=[status])]
        assert got == _expected(runs, {"status": [status]}), status
        assert [r.id for r in await store.list_runs(limit=2, status=[status])] == got[:2]
    counts = await store.count_runs(list(RunStatus))
    assert counts == {s: sum(r.status is s for r in runs) for s in RunStatus}
    # a held run is in runs_owned only: its start and end do not write the status indexes
    in_status = {r[0] for r in store.db.execute("SELECT id FROM runs INDEXED BY runs_status WHERE owner IS NULL")}
    assert not in_status & set(held)
    assert in_status == {r.id for r in runs if not r.owner}
    # claims: the free pending and running runs, and the held ones whose lease ran out or whose
    # engine is stolen from; not those held under a live lease
    later = time.time() + 7200  # every lease of the fixture has run out
    free = {r.id for r in runs if r.status in (RunStatus.PENDING, RunStatus.RUNNING) and not r.owner}
    now_claimed = await store.claim_runs("me", lease_seconds=30, limit=100, now=time.time(), steal_from=["engine0"])
    stolen = {r.id for r in runs if r.owner == "engine0"}
    due = {r.id for r in runs if r.status is RunStatus.WAITING and r.wake_at is not None and r.wake_at <= time.time()}
    assert {r.id for r in now_claimed} == free | stolen | due
    lapsed = await store.claim_runs("other", lease_seconds=30, limit=100, now=later)
    assert {r.id for r in lapsed} >= (set(held) - stolen)
    assert all(r.owner == "other" for r in lapsed)
