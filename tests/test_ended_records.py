"""A run that ended in this engine moments ago: its result is read without asking the store
(podium/engine/driving.py, ``DrivenRuns.ended``). A script that starts many runs and then awaits
each result read every record back (on PostgreSQL a round trip per run); now it reads none, and
what it gets is what the store holds."""

from __future__ import annotations

import sys

import pytest

from podium import Client, RunFailed, Workflow
from podium.engine import driving
from podium.engine.driving import DrivenRuns
from podium.records import RunRecord, RunStatus


def flow() -> Workflow:
    wf = Workflow("ended")

    @wf.step
    async def double(input: int) -> int:
        if input < 0:
            raise ValueError("negative")
        return input * 2

    return wf


def run_reads(log: list[str]) -> list[str]:
    return [sql for sql in log if sql.startswith("SELECT") and "FROM runs" in sql]


async def test_results_of_runs_that_ended_here_are_read_without_the_store_and_equal_its_records(tmp_path):
    wf = flow()
    async with Client(f"sqlite:///{tmp_path}/t.db") as c:
        await c.run(wf, 0)
        handles = [await c.start(wf, i) for i in (1, 2, -1)]
        for h in handles:
            await c.driving.settled(h.id)
        log: list[str] = []
        c.store.db.set_trace_callback(log.append)
        assert [await h.result() for h in handles[:2]] == [2, 4]
        with pytest.raises(RunFailed, match="negative"):
            await handles[2].result()
        c.store.db.set_trace_callback(None)
        assert run_reads(log) == []
        # the same records as the store's (read now: each was given once)
        for h in handles:
            stored = await c.store.get_run(h.id)
            assert stored is not None and stored.owner is None and stored.lease_expires_at is None
            assert (await c.wait(h.id)) == stored


async def test_an_old_record_is_read_from_the_store(tmp_path, monkeypatch):
    monkeypatch.setattr(driving, "ENDED_SECONDS", 0.0)
    wf = flow()
    async with Client(f"sqlite:///{tmp_path}/t.db") as c:
        h = await c.start(wf, 5)
        await c.driving.settled(h.id)
        log: list[str] = []
        c.store.db.set_trace_callback(log.append)
        assert await h.result() == 10
        c.store.db.set_trace_callback(None)
        assert len(run_reads(log)) == 1


def record(rid: str, size: int) -> RunRecord:
    return RunRecord(id=rid, workflow="w", version="1", status=RunStatus.COMPLETED, input=None, output="x" * size, created_at=1.0)


def test_the_records_kept_are_bounded_in_size_oldest_first_and_large_ones_are_not_kept(monkeypatch):
    monkeypatch.setattr(driving, "ENDED_BYTES", 128 * 1024)
    runs = DrivenRuns(10)
    runs.discard("big", record("big", 2100))  # over ENDED_BYTES / 64 (2 KiB): read back from the store
    for i in range(60):
        runs.discard(f"r{i}", record(f"r{i}", 1000))  # 1,512 counted each: 86 fit in 128 KiB
    assert runs.ended("big") is None
    assert runs.ended("r0") is not None and runs.ended("r0") is None  # given once
    for i in range(60, 200):
        runs.discard(f"r{i}", record(f"r{i}", 1000))
    kept = [i for i in range(200) if runs.ended(f"r{i}") is not None]
    assert kept == list(range(200 - len(kept), 200)) and 80 <= len(kept) <= 87


def test_the_bound_counts_the_memory_the_texts_take_not_their_length(monkeypatch):
    """Text outside Latin-1 takes 2 or 4 bytes a character: counted by length, 16 MB of records held
    up to 64 MB."""
    monkeypatch.setattr(driving, "ENDED_BYTES", 128 * 1024)
    runs = DrivenRuns(10)
    for i in range(200):
        rec = record(f"r{i}", 0)
        rec.output = "\U0001f600" * 300  # 300 characters, 1,200 bytes of text
        runs.discard(f"r{i}", rec)
    kept = [r for i in range(200) if (r := runs.ended(f"r{i}")) is not None]
    assert kept and sum(sys.getsizeof(r.output) for r in kept) <= 128 * 1024
