"""Chaos review (ninth session): a run whose workflow version no worker has.

A worker that claims such a run cannot drive it: it logs why and releases it for a worker that has
the version. Before: it claimed the same run again at once (on PostgreSQL its own release's NOTIFY
woke it, so about 370 claim-and-release transactions a second for two such runs, measured with
``pg_stat_database.xact_commit``), and since the run was the oldest, a worker with one free slot
claimed it every time and never reached the runs behind it. Now a worker leaves a run it could not
load alone for a while (:data:`podium.engine.worker.UNLOADABLE_RETRY`) and claims the others."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from store_helpers import sqlite_or_pg, versioned_flow

from podium import Client, RunStatus, Workflow


def _flow(version: str) -> Workflow:
    return versioned_flow("chaos_versions", version)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return sqlite_or_pg(request, tmp_path, "versions")


async def test_a_run_of_a_version_no_worker_has_neither_starves_the_queue_nor_is_claimed_in_a_loop(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    old, new = _flow("1"), _flow("2")
    async with Client(url, execute=False, workflows=[old, new]) as submit:
        stuck = (await submit.start(old, 1)).id  # the oldest run: claimed first
        good = (await submit.start(new, 1)).id
    caplog.set_level(logging.ERROR, "podium")
    # This worker has version 2 only (the run's workflow_ref names no importable module either).
    async with Client(url, workflows=[new], poll_interval=0.05, recover=False) as worker:
        claimed: list[str] = []
        rounds = 0
        real = worker.store.claim_runs

        async def spy(*args: Any, **kw: Any) -> Any:
            nonlocal rounds
            got = await real(*args, **kw)
            rounds += 1
            claimed.extend(r.id for r in got)
            return got

        worker.store.claim_runs = spy  # type: ignore[method-assign]
        stop = asyncio.Event()
        task = asyncio.create_task(worker.work(stop, concurrency=1))
        try:
            done = await worker.wait(good, timeout=30)
            assert done.status is RunStatus.COMPLETED  # before: never claimed, the old run took the slot
            seen = rounds
            while rounds < seen + 5:  # five more claim rounds (polls, and its own release's NOTIFY)
                await asyncio.sleep(0.02)
        finally:
            stop.set()
            await task
        assert claimed.count(stuck) == 1, claimed  # before: claimed again in every round
        assert (await worker.get(stuck)).status is RunStatus.PENDING and (await worker.get(stuck)).owner is None
    said = [r.getMessage() for r in caplog.records if stuck in r.getMessage()]
    assert len(said) == 1 and "'chaos_versions' version 1" in said[0] and "released for an engine that has it" in said[0], said


async def test_a_run_left_alone_is_tried_again_later(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The version may arrive later (a deploy, a worker with the code): the run is claimed again
    after :data:`UNLOADABLE_RETRY`, or at once when its version is registered here meanwhile."""
    from podium.engine import worker as worker_mod

    monkeypatch.setattr(worker_mod, "UNLOADABLE_RETRY", 0.2)
    old = _flow("1")
    async with Client(url, execute=False, workflows=[old]) as submit:
        stuck = (await submit.start(old, 1)).id
    async with Client(url, workflows=[_flow("2")], recover=False) as worker:
        assert await worker.take_over() == []
        version = ("chaos_versions", "1", (await worker.get(stuck)).workflow_ref or "")
        first = worker.claims.unloadable[version]
        assert await worker.take_over() == [] and worker.claims.unloadable[version] == first  # left alone
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while worker.claims.unloadable[version] == first:  # claimed (and released) again once it is due
            assert loop.time() < deadline, "the run was never tried again"
            await asyncio.sleep(0.05)
            assert await worker.take_over() == []
        worker.register(old)
        assert await worker.take_over() == [stuck]  # its version is here now: not left alone
        assert (await worker.wait(stuck, timeout=30)).status is RunStatus.COMPLETED
        assert version not in worker.claims.unloadable
