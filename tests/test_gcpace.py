"""The ``gc`` setting: while a client drives many runs at once (``driving.BUSY``), the garbage
collector's young threshold is raised (podium/engine/gcpace.py), so that thousands of live runs are
not walked every 700 allocations; what the program set is its own, and the thresholds found come
back once no client drives many (tests/test_attack_rev13.py: one at a time, Python's pace)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from podium import Client, Workflow
from podium.engine import driving, gcpace
from podium.engine.gcpace import MIDDLE_MAX, YOUNG, Pace
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


def blocked(gate: asyncio.Event) -> Workflow:
    wf = Workflow("blocked")

    @wf.step
    async def wait(input: int) -> int:
        await gate.wait()
        return input

    return wf


async def busy(c: Client, wf: Workflow, n: int) -> list:
    handles = [await c.start(wf, i) for i in range(n)]
    await c.bursts.landed(strict=False)
    return handles


@pytest.fixture(name="few")
def few_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driving, "BUSY", 4)  # many runs at once: 4 (Python's pace again at 1)


async def test_a_client_driving_many_runs_raises_the_young_threshold_until_none_drives_many(tmp_path, few):
    first, second = asyncio.Event(), asyncio.Event()
    async with Client(f"sqlite:///{tmp_path}/a.db") as a:
        assert gc.get_threshold() == (700, 10, 10)  # open, driving nothing: Python's pace
        handles = await busy(a, blocked(first), 4)
        assert gc.get_threshold() == (YOUNG, 10, 10)
        async with Client(f"sqlite:///{tmp_path}/b.db") as b:
            more = await busy(b, blocked(second), 4)
            assert gc.get_threshold() == (YOUNG, 10, 10)
            second.set()
            for h in more:
                await h.result()
        assert gc.get_threshold() == (YOUNG, 10, 10)  # a still drives its runs
        first.set()
        for h in handles:
            await h.result()
        assert gc.get_threshold() == (700, 10, 10)  # a quarter of BUSY or fewer: Python's pace
        await busy(a, blocked(asyncio.Event()), 4)
        assert gc.get_threshold() == (YOUNG, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)  # closed with runs unfinished: put back


async def test_gc_python_leaves_the_collector_alone(tmp_path, monkeypatch, few):
    monkeypatch.setenv("PODIUM_GC", "python")
    gate = asyncio.Event()
    async with Client(f"sqlite:///{tmp_path}/a.db") as a:
        await busy(a, blocked(gate), 4)
        assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.parametrize("young", [0, 50_000])
async def test_a_threshold_the_program_set_higher_or_off_stays_its_own(tmp_path, young, few):
    gc.set_threshold(young, 5, 5)
    async with Client(f"sqlite:///{tmp_path}/a.db") as a:
        await busy(a, blocked(asyncio.Event()), 4)
        assert gc.get_threshold() == (young, 5, 5)
    assert gc.get_threshold() == (young, 5, 5)


async def test_thresholds_the_program_changes_while_raised_are_not_put_back(tmp_path, few):
    async with Client(f"sqlite:///{tmp_path}/a.db") as a:
        await busy(a, blocked(asyncio.Event()), 4)
        assert gc.get_threshold() == (YOUNG, 10, 10)
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


def test_a_client_dropped_unclosed_while_busy_puts_the_thresholds_back_when_collected() -> None:
    class Owner:  # stands for a Client nobody closed
        pass

    owner = Owner()
    pace = Pace("engine", owner)
    pace.busy(True)
    assert gc.get_threshold() == (YOUNG, 10, 10)
    del owner
    gc.collect()
    assert gc.get_threshold() == (700, 10, 10)
    assert not pace.on


class _Cycle:
    def __init__(self) -> None:
        self.me = self


async def test_middle_collections_that_find_nothing_come_later_while_busy_and_one_that_finds_some_puts_the_ratio_back(
    tmp_path, few
):
    gate = asyncio.Event()
    async with Client(f"sqlite:///{tmp_path}/a.db") as a:
        await busy(a, blocked(gate), 4)
        assert gc.get_threshold() == (YOUNG, 10, 10)
        middle = 10
        for _ in range(8):  # a collection's return: the unreachable objects it found
            middle = min(middle * 2, MIDDLE_MAX) if gc.collect(1) == 0 else 10
            assert gc.get_threshold()[:2] == (YOUNG, middle)
        assert middle == MIDDLE_MAX  # nothing to find after the first: doubled up to the ceiling
        _Cycle()  # garbage only a collection frees
        assert gc.collect(1) > 0
        assert gc.get_threshold() == (YOUNG, 10, 10)
        assert gc.collect(0) >= 0 and gc.get_threshold() == (YOUNG, 10, 10)  # young ones change nothing
        middle = 20 if gc.collect(1) == 0 else 10
        middle = min(middle * 2, MIDDLE_MAX) if gc.collect(2) == 0 else 10  # a full one counts as a middle one
        assert gc.get_threshold()[:2] == (YOUNG, middle)
        gate.set()
    assert gc.get_threshold() == (700, 10, 10)
    assert gcpace._paced not in gc.callbacks


async def test_the_pace_leaves_thresholds_the_program_set_while_busy_and_changes_nothing_under_its_lock(tmp_path, few):
    gate = asyncio.Event()
    async with Client(f"sqlite:///{tmp_path}/a.db") as a:
        await busy(a, blocked(gate), 4)
        gc.collect()
        with gcpace._lock:  # the thread holding it may be the one collecting: no deadlock, no change
            gc.collect(1)
            assert gc.get_threshold() == (YOUNG, 10, 10)
        gc.collect(1)
        assert gc.get_threshold() == (YOUNG, 20, 5)  # doubled (full ones as often): the pace's own
        gc.set_threshold(5000, 3, 3)  # the program's
        gc.collect(1)
        assert gc.get_threshold() == (5000, 3, 3)
        gate.set()
    assert gc.get_threshold() == (5000, 3, 3)  # not put back


class _Owner:  # stands for a client
    pass


def _quiet_middles(pace_middle: int) -> tuple[tuple[int, ...], ...]:
    """Middle collections until the pace's middle ratio reaches ``pace_middle`` (the first may
    find what earlier tests left, putting the ratio back): the thresholds after each, and the
    middle collections counted since the last full one."""
    seen = []
    gc.collect()  # (none counted)
    for _ in range(20):
        gc.collect(1)
        seen.append((*gc.get_threshold(), gc.get_count()[2]))
        if seen[-1][1] == pace_middle:
            break
    return tuple(seen)


def test_full_collections_keep_pythons_pace_in_young_collections_while_middle_ones_come_later() -> None:
    # Cycles that die old (a long run's session, an evicted cache entry) are found by full
    # collections only; a full one comes every threshold2 middle ones, so with the middle ratio
    # at 80 and threshold2 kept at 10 it came after ~630 young collections instead of ~100
    # (measured: 4.8M long runs each leaving a small cycle, peak RSS up by half or more).
    owner = _Owner()
    pace = Pace("engine", owner)
    pace.busy(True)
    try:
        for young, middle, full, counted in _quiet_middles(MIDDLE_MAX):
            assert young == YOUNG
            # a full one comes once the middle ones counted exceed ``full``, each once the young
            # ones exceed ``middle``: at most twice Python's 11 x 11 collections away
            assert (full - counted + 1) * (middle + 1) <= 2 * 11 * 11, (middle, full, counted)
            assert full <= 10
        assert gc.get_threshold()[1] == MIDDLE_MAX
        _Cycle()
        assert gc.collect(1) > 0
        assert gc.get_threshold() == (YOUNG, 10, 10)
    finally:
        pace.close()
    assert gc.get_threshold() == (700, 10, 10)


def test_a_middle_ratio_the_program_set_above_the_ceiling_is_never_lowered() -> None:
    gc.set_threshold(700, 100, 10)
    owner = _Owner()
    pace = Pace("engine", owner)
    pace.busy(True)
    try:
        assert gc.get_threshold() == (YOUNG, 100, 10)
        for _ in range(3):
            gc.collect(1)
            assert gc.get_threshold() == (YOUNG, 100, 10)  # was lowered to MIDDLE_MAX (80)
    finally:
        pace.close()
    assert gc.get_threshold() == (700, 100, 10)


def test_no_middle_pace_where_the_collector_has_no_middle_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    # CPython 3.14's incremental collector: a young and an old generation, the second threshold
    # the rate the old one is scanned at (doubling it scans it more slowly), the third ignored
    monkeypatch.setattr(gcpace, "_GENERATIONS", False)
    owner = _Owner()
    pace = Pace("engine", owner)
    pace.busy(True)
    try:
        assert gc.get_threshold() == (YOUNG, 10, 10)
        assert gcpace._paced not in gc.callbacks
        gc.collect(1)
        gc.collect(1)
        assert gc.get_threshold() == (YOUNG, 10, 10)
    finally:
        pace.close()
    assert gc.get_threshold() == (700, 10, 10)


def test_the_full_ratio_does_not_chase_the_middle_collections_counted() -> None:
    # while the old generation's quarter rule holds full collections back, the middle ones counted
    # grow past any threshold: a full threshold raised to that count never let a full one come
    owner = _Owner()
    pace = Pace("engine", owner)
    pace.busy(True)
    try:
        gc.collect()
        for _ in range(5):
            for _ in range(4):
                gc.collect(1)  # counted, no full one
            _Cycle()
            gc.collect(1)  # finds some: the ratios found again
        assert gc.get_count()[2] > 10
        for _ in range(4):
            gc.collect(1)
            assert gc.get_threshold()[2] <= 10, (gc.get_threshold(), gc.get_count())
    finally:
        pace.close()


def test_a_young_collection_that_finds_garbage_puts_the_ratios_back() -> None:
    # a workload that turns from runs leaving no cycles to runs leaving some (measured through the
    # engine, 48,000 runs, 2,000 at once, every other block of 8,000 leaving 64 KiB cycles that
    # outlive a young collection: 445-648 MB of peak RSS against 272-287 MB with the ratio at 10):
    # its cycles waited for the middle collection the quiet blocks had put off, up to 80 young ones
    owner = _Owner()
    pace = Pace("engine", owner)
    pace.busy(True)
    try:
        _quiet_middles(MIDDLE_MAX)
        assert gc.get_threshold()[1] == MIDDLE_MAX
        assert gc.collect(0) == 0 and gc.get_threshold()[1] == MIDDLE_MAX  # finding nothing: kept
        _Cycle()
        assert gc.collect(0) > 0
        assert gc.get_threshold() == (YOUNG, 10, 10)
    finally:
        pace.close()
    assert gc.get_threshold() == (700, 10, 10)
