"""The ``gc`` setting: while a client is open, the garbage collector's young threshold is raised
(podium/engine/gcpace.py), so that thousands of live runs are not walked every 700 allocations;
what the program set is its own, and the thresholds found come back when the last client closes."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from podium import Client, Workflow
from podium.engine.gcpace import YOUNG
from podium.errors import ConfigError


@pytest.fixture(autouse=True)
def thresholds() -> Iterator[None]:
    found = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # CPython's defaults, whatever the runner set
    yield
    gc.set_threshold(*found)


def napping() -> Workflow:
    wf = Workflow("napping")

    async def nap() -> None:
        await asyncio.sleep(0.001)

    wf.step(nap, id="a")
    wf.step(nap, id="b", needs=["a"])
    return wf


async def test_an_open_client_raises_the_young_threshold_and_the_last_to_close_puts_it_back(tmp_path):
    async with Client(f"sqlite:///{tmp_path}/a.db") as a:
        assert gc.get_threshold() == (YOUNG, 10, 10)
        async with Client(f"sqlite:///{tmp_path}/b.db"):
            assert gc.get_threshold() == (YOUNG, 10, 10)
        assert gc.get_threshold() == (YOUNG, 10, 10)  # a is still open
        await a.run(napping())
    assert gc.get_threshold() == (700, 10, 10)


async def test_gc_python_leaves_the_collector_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("PODIUM_GC", "python")
    async with Client(f"sqlite:///{tmp_path}/a.db"):
        assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.parametrize("young", [0, 50_000])
async def test_a_threshold_the_program_set_higher_or_off_stays_its_own(tmp_path, young):
    gc.set_threshold(young, 5, 5)
    async with Client(f"sqlite:///{tmp_path}/a.db"):
        assert gc.get_threshold() == (young, 5, 5)
    assert gc.get_threshold() == (young, 5, 5)


async def test_thresholds_the_program_changes_while_a_client_is_open_are_not_put_back(tmp_path):
    async with Client(f"sqlite:///{tmp_path}/a.db"):
        gc.set_threshold(1234, 7, 7)
    assert gc.get_threshold() == (1234, 7, 7)


async def test_a_bad_gc_setting_is_refused_naming_it_before_the_store_is_opened(tmp_path, monkeypatch):
    monkeypatch.setenv("PODIUM_GC", "fast")
    client = Client(f"sqlite:///{tmp_path}/a.db")
    with pytest.raises(ConfigError, match=r"gc \(from \$PODIUM_GC\).*'engine' or 'python'"):
        await client.open()
    assert not (tmp_path / "a.db").exists()
    assert gc.get_threshold() == (700, 10, 10)


async def young_collections(tmp_path, name: str, runs: int) -> int:
    """Young collections while ``runs`` runs are started in a burst and finish."""
    seen = []

    def count(phase: str, info: dict) -> None:
        if phase == "start" and info["generation"] == 0:
            seen.append(1)

    wf = napping()
    async with Client(f"sqlite:///{tmp_path}/{name}.db", max_concurrent_runs=runs) as c:
        await c.run(wf)
        gc.callbacks.append(count)
        try:
            handles = [await c.start(wf) for _ in range(runs)]
            for h in handles:
                await h.result()
        finally:
            gc.callbacks.remove(count)
    return len(seen)


async def test_a_burst_of_runs_pays_far_fewer_collections_under_the_engine_pace(tmp_path, monkeypatch):
    engine = await young_collections(tmp_path, "engine", 1000)
    monkeypatch.setenv("PODIUM_GC", "python")
    python = await young_collections(tmp_path, "python", 1000)
    assert python > 50  # the burst allocates tens of thousands of container objects
    assert engine * 10 < python, (engine, python)
