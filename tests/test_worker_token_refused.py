"""A worker whose token is refused hands back the runs it drives (fifth session). Each attack
test passed its attack on the code before the fix."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from podium import Client, StepContext, Workflow
from podium.errors import AuthError


def _gated(gate: asyncio.Event, seen: list[str]) -> Workflow:
    wf = Workflow("gated")

    @wf.step
    async def wait_then_act(ctx: StepContext, input: Any) -> str:
        seen.append("started")
        while not gate.is_set():
            await asyncio.sleep(0.02)
        seen.append("acted")  # the business action a revoked worker must not take
        return "done"

    return wf


async def test_attack_a_revoked_worker_goes_on_driving_the_runs_it_had_claimed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack: worker w1's token is revoked (its host was lost). It stopped claiming new runs,
    but the runs it had claimed went on to their end, steps and connector calls included, with
    the revoked identity. Now its engine checks its own token as it maintains its runs and, once
    refused, stops them at once and hands them back (released, not failed): another worker
    finishes them."""
    from podium.governance import identity

    monkeypatch.setattr(identity, "RECHECK_SECONDS", 0.1)
    db = f"sqlite:///{tmp_path}/podium.db"
    async with Client(db) as setup:
        await setup.create_user("root", ["admin"])
        root = await setup.create_token("root")
    gate, seen = asyncio.Event(), []
    wf = _gated(gate, seen)
    async with Client(db, token=root, workflows=[wf], execute=False) as admin:
        await admin.create_user("w1", ["worker"], service=True)
        await admin.create_user("w2", ["worker"], service=True)
        t1 = await admin.create_token("w1", name="host-7")
        t2 = await admin.create_token("w2", name="host-8")
        run = await admin.start(wf, {})
        async with Client(db, workflows=[wf], token=t1, poll_interval=0.05) as w1:
            stop1 = asyncio.Event()
            working = asyncio.create_task(w1.work(stop1))
            for _ in range(500):
                if seen:
                    break
                await asyncio.sleep(0.02)
            assert seen == ["started"]
            await admin.revoke_token("w1", "host-7")
            with pytest.raises(AuthError, match="revoked"):
                await asyncio.wait_for(working, 10)
            for _ in range(500):  # its engine hands the run back
                record = await admin.get(run.id)
                if record.owner is None and not w1.driving:
                    break
                await asyncio.sleep(0.02)
            assert record.owner is None and not w1.driving, record
            gate.set()
            await asyncio.sleep(0.2)
            assert seen == ["started"], "the revoked worker acted"
            assert (await admin.get(run.id)).status.value == "running"  # handed back, not failed
        async with Client(db, workflows=[wf], token=t2, poll_interval=0.05) as w2:
            stop2 = asyncio.Event()
            working2 = asyncio.create_task(w2.work(stop2))
            assert await admin.result(run.id, timeout=20) == "done"
            stop2.set()
            await asyncio.wait_for(working2, 10)
    assert seen == ["started", "started", "acted"]
