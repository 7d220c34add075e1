"""Review of the scale layer (2026-12-06, seventh session): pages of runs by cursor when many runs
share one ``created_at`` (a burst of starts in one clock tick, a clock with coarse resolution), on
every store and through the API's cursor encoding; and parked runs' timers across restarts of two
engines at once (none lost, none fired twice)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from podium import Client, RunStatus, StepContext, Workflow
from podium.engine import waits, worker
from podium.records import RunRecord
from podium.server.routes_runs import decode_cursor, encode_cursor

TICK = 1_765_000_000.123456  # one created_at for many runs


async def _fill(store) -> list[str]:  # type: ignore[no-untyped-def]
    statuses = [RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING, RunStatus.COMPLETED, RunStatus.FAILED]
    ids = []
    for i in range(83):
        # most share one instant; a few are just before and after it (and two more instants tie too)
        at = TICK if i < 60 else (TICK - 1 if i < 70 else (TICK + 2 if i < 78 else TICK + 0.5))
        rid = f"r{(i * 37) % 101:03d}-{i}"  # ids in no particular order of creation
        wf = "a" if i % 3 else "b"
        await store.create_run(RunRecord(id=rid, workflow=wf, version="1", status=statuses[i % 5], created_at=at))
        ids.append(rid)
    return ids


async def _pages(c: Client, limit: int, **filters) -> list[str]:  # type: ignore[no-untyped-def]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await c.list(limit=limit, before=decode_cursor(cursor) if cursor else None, **filters)
        seen += [r.id for r in page]
        if len(page) < limit:
            return seen
        cursor = encode_cursor(page[-1].created_at, page[-1].id)  # as GET /api/runs gives it


@pytest.mark.parametrize(
    "filters",
    [{}, {"status": ["running", "waiting"]}, {"status": ["pending"]}, {"workflow": "a"}, {"workflow": "a", "status": ["completed", "failed", "pending"]}],
    ids=["all", "two-statuses", "one-status", "workflow", "workflow-three-statuses"],
)
async def test_pages_by_cursor_neither_skip_nor_repeat_runs_that_share_a_creation_time(store_url: str, filters) -> None:  # type: ignore[no-untyped-def]
    """Checked and sound: the cursor is (created_at, id), compared as a pair on every store, and a
    float survives the cursor's JSON exactly."""
    async with Client(store_url, recover=False) as c:
        await _fill(c.store)
        whole = [r.id for r in await c.list(limit=1000, **filters)]
        assert len(whole) == len(set(whole)) > 10
        for limit in (1, 4, 7, 60):
            assert await _pages(c, limit, **filters) == whole, limit


# -- timers across restarts -----------------------------------------------------------------------


def _sleepers(log: Path) -> Workflow:
    wf = Workflow("review_sleepers")

    @wf.step
    async def nap(ctx: StepContext, input: dict) -> float:
        await ctx.sleep(max(0.0, input["at"] - time.time()))
        return time.time()

    @wf.step
    async def after(ctx: StepContext, nap: float) -> float:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{ctx.run_id}\n".encode())
        finally:
            os.close(fd)
        return nap

    return wf


async def test_a_restart_of_two_engines_rearms_every_timer_once(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checked and sound: runs parked with timers (due before the restart, at once after it, later
    than the second engines' horizon) each wake once and go on once, with two engines reading the
    same timers after the first is gone."""
    if store_url == "memory://":
        return  # a memory store does not outlive its engine
    monkeypatch.setattr(waits, "HOLD", 0.2)  # these waits are short: held in memory they would never park
    monkeypatch.setattr(worker, "EARLY", 0.2)
    log = tmp_path / "after.log"
    wf = _sleepers(log)
    now = time.time() + 3.0  # every run parks before its timer, the first engine gone by then
    offsets = [0.5, 0.6, 1.0, 2.0, 2.0, 2.0, 3.5, 4.0]
    async with Client(store_url, workflows=[wf], poll_interval=0.05) as first:
        handles = [await first.start(wf, {"at": now + o}) for o in offsets]
        for h in handles:
            deadline = time.monotonic() + 20
            while (await first.get(h.id)).status is not RunStatus.WAITING:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
        assert time.time() < now, "the runs took too long to park"
    # Closed: every run parked, some overdue by the time the next engines open.
    await asyncio.sleep(max(0.0, now + 0.7 - time.time()))
    second = Client(store_url, workflows=[wf], poll_interval=0.05)
    third = Client(store_url, workflows=[wf], poll_interval=0.05)
    second.timers.horizon = third.timers.horizon = 1.0  # the later timers are read in as they come close
    async with second, third:
        for h in handles:
            woke = await second.result(h.id, timeout=30)
            assert woke >= (await second.get(h.id)).created_at
        lines = log.read_text().split()
        assert sorted(lines) == sorted(h.id for h in handles), lines  # each went on once
