"""Runs an engine cannot load, left alone by version (eleventh session).

An engine that cannot load a run (its workflow version retired, its code not here) releases it
and leaves it alone for a while. It remembered each such run and sent every one with each claim
(``skip``), and met them ``limit`` at a time: with a version retired with thousands of runs left,
every claim carried thousands of ids, and a run it can drive waited behind all of them. Now it
remembers the version: one entry, whatever the number of runs, and the next claim reaches the
runs behind them. None is lost: an engine that has the version drives them all (docs/status.md,
"Refusals flooding the audit log (eleventh session)")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from store_helpers import sqlite_or_pg, versioned_flow

from podium import Client, RunStatus, Workflow

RUNS = 300


def _flow(version: str) -> Workflow:
    return versioned_flow("retired", version)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return sqlite_or_pg(request, tmp_path, "unloadable")


async def test_runs_of_a_version_not_here_cost_one_entry_per_claim_and_are_not_lost(url: str) -> None:
    old, new = _flow("1"), _flow("2")
    async with Client(url, execute=False, workflows=[old, new]) as submit:
        stuck = [(await submit.start(old, i)).id for i in range(RUNS)]  # the oldest: claimed first
        live = (await submit.start(new, 0)).id
    async with Client(url, workflows=[new], recover=False) as engine:
        sent: list[int] = []
        real = engine.store.claim_runs

        async def spy(*args: Any, **kw: Any) -> Any:
            sent.append(len(kw.get("skip") or ()) + len(kw.get("skip_versions") or ()))
            return await real(*args, **kw)

        engine.store.claim_runs = spy  # type: ignore[method-assign]
        assert await engine.take_over(limit=10) == []  # ten of the stuck runs: released
        assert await engine.take_over(limit=10) == [live]  # before: after RUNS / 10 claims
        assert sent == [0, 1], sent  # before: 10, then 20... ids (RUNS at the end)
        assert (await engine.wait(live, timeout=30)).status is RunStatus.COMPLETED
        assert await engine.take_over(limit=10) == [] and sent[-1] == 1
        assert [(await engine.get(rid)).owner for rid in stuck[:20]] == [None] * 20
        engine.register(old)  # the version is here now: none was lost
        assert sorted(await engine.take_over(limit=RUNS)) == sorted(stuck)
        for rid in stuck:
            assert (await engine.wait(rid, timeout=60)).status is RunStatus.COMPLETED
        assert json.loads((await engine.get(stuck[0])).input) == 0
