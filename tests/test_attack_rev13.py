"""Review of three changes of 2026-12-07: the ``gc`` setting (podium/engine/gcpace.py), erasure
refused while a stopped engine's start log waits (podium/storage/_sqlite_erase.py), and the record
of a run that ended here kept for ``result()``/``wait()`` (podium/engine/driving.py). Each test
failed before its fix (docs/status.md, "Review of the gc pace, erasure and ended records")."""

from __future__ import annotations

import asyncio
from pathlib import Path

from podium import Client, Workflow
from podium.memory import Memory

EMAIL = "ann@example.com"


def _blocked(gate: asyncio.Event) -> Workflow:
    wf = Workflow("blocked")

    @wf.step
    async def wait(input: int) -> int:
        await gate.wait()
        return input

    return wf


# -- ended records ----------------------------------------------------------------------------------


def _flow() -> Workflow:
    wf = Workflow("echo")

    @wf.step
    async def echo(input: dict) -> str:
        return f"sent to {input['email']}"

    return wf


async def test_attack_a_result_read_after_an_erasure_in_this_process_does_not_show_the_erased_data(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/e.db"
    async with Client(url) as c:
        h = await c.start(_flow(), {"email": EMAIL})
        await c.driving.settled(h.id)
        async with Memory(url, embedder="hash:64") as mem:
            await mem.forget("customer:42", values=[EMAIL])
        assert EMAIL not in (await c.store.get_run(h.id)).output  # type: ignore[union-attr,operator]
        assert EMAIL not in await h.result()


async def test_attack_a_result_awaited_while_running_leaves_no_record_kept_behind(tmp_path: Path) -> None:
    """The record was kept even when the result was taken from the live executor: a second
    ``result()`` within 10 s, after an erasure, showed the erased data."""
    async with Client(f"sqlite:///{tmp_path}/e.db") as c:
        h = await c.start(_flow(), {"email": EMAIL})
        assert EMAIL in await h.result()
        assert c.driving.ended(h.id) is None


async def test_attack_the_record_of_a_run_cancelled_from_another_client_is_the_stored_one(
    tmp_path: Path,
) -> None:
    gate = asyncio.Event()
    wf = _blocked(gate)
    url = f"sqlite:///{tmp_path}/x.db"
    async with (
        Client(url, workflows=[wf], poll_interval=0.02) as a,
        Client(url, workflows=[wf], recover=False) as b,
    ):
        h = await a.start(wf, 1)
        await a.bursts.landed(strict=False)
        cancelling = asyncio.create_task(b.cancel(h.id))
        await a.driving.settled(h.id)
        got = await a.wait(h.id)
        await cancelling
        assert got == await a.store.get_run(h.id)
        assert got.cancel_requested


async def test_attack_the_record_of_a_run_resumed_by_a_labelled_worker_is_the_stored_one(
    tmp_path: Path,
) -> None:
    wf = Workflow("gpu-job")

    @wf.step
    async def prepare() -> list[int]:
        return [1, 2, 3]

    @wf.step(labels=["gpu"])
    async def train(prepare: list[int]) -> int:
        return sum(prepare)

    url = f"sqlite:///{tmp_path}/g.db"
    async with Client(url, workflows=[wf], labels=[]) as cpu:
        h = await cpu.start(wf)
        for _ in range(500):
            run = await cpu.get(h.id)
            if run.labels == "gpu" and run.owner is None:
                break
            await asyncio.sleep(0.01)
        async with Client(url, workflows=[wf], labels=["gpu"], recover=False) as gpu:
            assert await gpu.resume() == [h.id]
            await gpu.driving.settled(h.id)
            got = await gpu.wait(h.id)
            assert got == await gpu.store.get_run(h.id)
            assert got.labels is None
