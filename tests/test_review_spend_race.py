"""Review of the spending counters' tamper check under additions at once (2026-12-07, sixteenth
session). A full CI run failed ``test_children_spending_at_once_count_every_call_...[postgres]``
once: eight children added to their parent's run counter at the same moment, the check took an
honest addition for a counter lowered in the store and "put it back" one call higher (0.27 for
0.24). Each interleaving here is run explicitly (events, no sleeps) on memory, SQLite and
PostgreSQL; each failed before the fix (docs/status.md, "Spending counters added at once")."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from podium import Client
from podium.governance import counters
from podium.governance.policy import SPEND

KEY = "run:r1:cost"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/spend.db"
    return str(request.getfixturevalue("pg_url"))


def _held_after_the_store(c: Client, monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, asyncio.Event]:
    """The first add's total, committed in the store, comes back to it only once ``go`` is set
    (``added`` is set then): what other calls do in between sees the store with it."""
    real, added, go = c.store.kv_incr, asyncio.Event(), asyncio.Event()

    async def incr(namespace: str, key: str, amount: float) -> float:
        total = await real(namespace, key, amount)
        if not added.is_set():
            added.set()
            await go.wait()
        return total

    monkeypatch.setattr(c.store, "kv_incr", incr)
    return added, go


async def _restores(c: Client) -> list[object]:
    return [e.details() for e in await c.audit_log() if e.action == counters.RESTORE]


def _another_add(c: Client) -> Callable[[], Awaitable[object]]:
    return lambda: counters.add(c.governance, KEY, 0.03, 0.3)


def _a_read(c: Client) -> Callable[[], Awaitable[object]]:
    return lambda: counters.read(c.governance, KEY)


@pytest.mark.parametrize("between", ["another add", "a read", "another add, floors forgotten"])
async def test_an_add_whose_total_comes_back_late_is_not_taken_for_a_lowered_counter(
    url: str, monkeypatch: pytest.MonkeyPatch, between: str
) -> None:
    """Failed before (0.09 for 0.06, or 0.06 for 0.03): one add is in the store, and before its
    total comes back another child's add (or a budget check reading the counter) finishes and
    raises what the engine knew the counter at, or marks it in the signed log read by an engine
    that had forgotten it. The first add took the counter under it (its total less its amount)
    for one lowered behind the admins' back and put it back one call higher."""
    async with Client(url) as c:
        gov = c.governance
        added, go = _held_after_the_store(c, monkeypatch)
        first = asyncio.create_task(counters.add(gov, KEY, 0.03, 0.3))  # every add passes a tenth: marked
        await added.wait()
        if between == "a read":
            assert await _a_read(c)() == pytest.approx(0.03)
        else:
            assert await _another_add(c)() == pytest.approx(0.06)
            if between.endswith("forgotten"):
                gov.spend_floors.clear()  # an engine that had not read it: the signed marks tell
        go.set()
        await first
        held = 0.03 if between == "a read" else 0.06
        assert float(await c.store.kv_get(SPEND, KEY) or 0) == pytest.approx(held)
        assert await _restores(c) == []
        assert await counters.read(gov, KEY) == pytest.approx(held)


async def test_eight_adds_at_once_count_each_once_and_a_lowered_counter_is_still_put_back(url: str) -> None:
    """Checked: eight adds at once leave the counter at their sum with no restore; zeroed in the
    store afterwards, the next add still finds it lowered and puts it back (audited)."""
    async with Client(url) as c:
        gov = c.governance
        await asyncio.gather(*(counters.add(gov, KEY, 0.03, 0.3) for _ in range(8)))
        assert float(await c.store.kv_get(SPEND, KEY) or 0) == pytest.approx(0.24)
        assert await _restores(c) == []
        await c.store.kv_put(SPEND, KEY, "0")  # the attacker, writing the database
        assert await counters.add(gov, KEY, 0.03, 0.3) == pytest.approx(0.27)
        [restore] = await _restores(c)
        assert restore["restored"] == pytest.approx(0.27) and restore["found"] == pytest.approx(0.0)
        assert float(await c.store.kv_get(SPEND, KEY) or 0) == pytest.approx(0.27)
