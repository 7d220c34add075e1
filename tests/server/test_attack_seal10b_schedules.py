"""Schedules' last fire times edited in the store (helper seal10b, tenth session).

A schedule's last fire time is a row of the key-value table (``schedules``). The attacker writes
the database but does not hold the audit key: setting it back made a ``run_all`` schedule fire
again for every period since (a month of nightly business actions that never ran at those times,
started at once), and setting it forward made the schedule fire no more until that date, silently.
An edited time is not taken now: the schedule fires at most the latest period due (whose run id
derives from the period, so a period that ran is not started again), audited as ``access.denied``
(docs/status.md, "Drift references, fire times and learned contracts, sealed")."""

from __future__ import annotations

import json
from typing import Any

import pytest
from store_attacker import sql

from podium import Client

from . import flows
from .test_triggers import at


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/podium.db"
    return str(request.getfixturevalue("pg_url"))


KW = {"workflows": flows.TRIGGERS, "triggers": False, "misfire": "run_all"}


async def _denied(url: str) -> list[Any]:
    async with Client(url) as c:
        return [e for e in await c.audit_log() if e.action == "access.denied" and e.target.startswith("schedule:")]


async def test_attack_a_last_fire_time_set_back_does_not_fire_past_periods_again(server: Any, url: str) -> None:
    async with server(url, **KW) as (app, _):
        trig = app.state.triggers
        assert await trig.tick(at(2024, 1, 1, 12)) == []  # first sight
        first = await trig.tick(at(2024, 1, 2, 2, 0) + 1)
        assert len(first) == 1
    sql(url, "UPDATE kv SET value = ? WHERE ns = 'schedules'", json.dumps({"last": at(2023, 12, 1, 12)}))
    async with server(url, **KW) as (app, http):
        trig = app.state.triggers
        fired = await trig.tick(at(2024, 1, 2, 3))
        assert fired == first, f"{len(fired)} past periods fired"  # the latest period only: the run it started
        runs = (await http.get("/api/runs", params={"workflow": "nightly"})).json()["runs"]
        assert len(runs) == 1
        assert len(await trig.tick(at(2024, 1, 3, 2, 0) + 1)) == 1  # and it goes on
    denied = await _denied(url)
    assert len(denied) == 1 and "record not backed by the audit log" in (denied[0].data or "")


async def test_attack_a_last_fire_time_set_forward_does_not_silence_the_schedule(server: Any, url: str) -> None:
    async with server(url, **KW) as (app, _):
        trig = app.state.triggers
        assert await trig.tick(at(2024, 1, 1, 12)) == []
    sql(url, "UPDATE kv SET value = ? WHERE ns = 'schedules'", json.dumps({"last": at(2030, 1, 1, 12)}))
    async with server(url, **KW) as (app, http):
        trig = app.state.triggers
        assert len(await trig.tick(at(2024, 1, 2, 2, 0) + 1)) == 1, "the schedule stopped firing"
        assert len(await trig.tick(at(2024, 1, 3, 2, 0) + 1)) == 1
        sched = (await http.get("/api/triggers")).json()["schedules"][0]
        assert sched["next"] == at(2024, 1, 4, 2)
    assert await _denied(url)


async def test_attack_an_older_sealed_fire_time_put_back_fires_nothing_again(server: Any, url: str) -> None:
    """The attacker keeps the sealed row of one night and puts it back after later nights fired:
    a running server keeps the latest time it wrote, and a restarted one derives the same run ids."""
    async with server(url, **KW) as (app, http):
        trig = app.state.triggers
        await trig.tick(at(2024, 1, 1, 12))
        async with Client(url) as c:
            older = await c.store.kv_get("schedules", trig.schedules[0].key)
        assert len(await trig.tick(at(2024, 1, 3, 2, 0) + 1)) == 2
        sql(url, "UPDATE kv SET value = ? WHERE ns = 'schedules'", older)
        assert await trig.tick(at(2024, 1, 3, 3)) == []
        runs = (await http.get("/api/runs", params={"workflow": "nightly"})).json()["runs"]
        assert len(runs) == 2
