"""Twelfth-session review of runs left alone by version (engine/worker.py, ``skip_versions``).

A claim sent at most ``MAX_SKIPPED`` versions the engine could not load, the most recently failed.
Past that, each claim took the oldest runs of a version left out, failed to load them, and marked
that version the newest, which pushed the next one out: the engine went round the versions it
cannot load for ever, every claim filled with their runs, and a run it can drive, started after
them, was never claimed (a deployer with more versions than the cap that no worker loads, or a
fleet retiring them, starves every other run). Fails on the code before the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_helpers import sqlite_or_pg, versioned_flow

import podium.engine.worker as worker
from podium import Client, RunStatus

VERSIONS, RUNS, CAP, LIMIT = 6, 4, 3, 4


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return sqlite_or_pg(request, tmp_path, "unloadable12")


async def test_attack_more_unloadable_versions_than_the_cap_do_not_starve_a_run_this_engine_can_drive(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "MAX_SKIPPED", CAP, raising=False)  # the code before the fix capped at 200; none now
    old = [versioned_flow("retired", str(v)) for v in range(VERSIONS)]
    live_flow = versioned_flow("retired", "live")  # the same workflow: fairness between workflows does not pick it
    async with Client(url, execute=False, workflows=[*old, live_flow]) as submit:
        for wf in old:
            for i in range(RUNS):
                await submit.start(wf, i)
        live = (await submit.start(live_flow, 0)).id
    async with Client(url, workflows=[live_flow], recover=False) as engine:
        resumed: list[str] = []
        for _ in range(3 * VERSIONS):
            resumed += await engine.take_over(limit=LIMIT)
            if resumed:
                break
        assert resumed == [live], "the run this engine can drive was never claimed"
        assert (await engine.wait(live, timeout=30)).status is RunStatus.COMPLETED
